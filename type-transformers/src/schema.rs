//! The JSON schema flytekit puts in a dataclass's `LiteralType.metadata` (mashumaro's
//! `build_json_schema(...).to_dict()`), built from the field types' `LiteralType`s.
//!
//! Shapes verified against flytekit 1.16.31 / mashumaro:
//!
//! | field type | schema |
//! |---|---|
//! | int / float / str / bool | `{"type": "integer" \| "number" \| "string" \| "boolean"}` |
//! | datetime | `{"type": "string", "format": "date-time"}` |
//! | timedelta | `{"type": "number", "format": "time-delta"}` |
//! | bytes | `{"type": "string", "format": "base64"}` |
//! | `List[T]` | `{"type": "array", "items": T}` |
//! | `Dict[str, T]` | `{"type": "object", "additionalProperties": T, "propertyNames": {"type": "string"}}` |
//! | `dict` | `{"type": "object"}` |
//! | `Optional[T]`, `Union[...]` | `{"anyOf": [T, ..., {"type": "null"}]}` |
//! | Enum | `{"enum": [values]}` |
//! | nested dataclass | its own schema, inlined |
//! | FlyteFile / FlyteDirectory / StructuredDataset | the schema of those classes |
//! | dataclass | `{"type": "object", "title": name, "additionalProperties": false, "properties": {...}, "required": [fields without default, in order]}` (`properties`/`required` left out when empty) |
use serde_json::{json, Map, Value};
use tern_agent_api::core;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::SimpleType as S;

use crate::literals::is_none_type;
use crate::msgpack_literal::is_directory;
use crate::structs::struct_to_json;

/// One field of a dataclass schema.
#[derive(Debug, Clone)]
pub struct SchemaField<'a> {
    pub name: &'a str,
    pub ty: &'a core::LiteralType,
    /// The field's default value (as JSON); a field without one is required.
    pub default: Option<Value>,
}

/// The schema of a dataclass named `title` with these fields (in declaration order).
pub fn dataclass_schema(title: &str, fields: &[SchemaField<'_>]) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("title".into(), json!(title));
    schema.insert("additionalProperties".into(), json!(false));
    if !fields.is_empty() {
        let mut props = Map::new();
        for f in fields {
            let mut s = json_schema(f.ty);
            if let (Some(default), Value::Object(o)) = (&f.default, &mut s) {
                o.insert("default".into(), default.clone());
            }
            props.insert(f.name.to_owned(), s);
        }
        schema.insert("properties".into(), Value::Object(props));
    }
    let required: Vec<Value> = fields.iter().filter(|f| f.default.is_none()).map(|f| json!(f.name)).collect();
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    Value::Object(schema)
}

/// The JSON schema mashumaro writes for a field of type `ty`.
pub fn json_schema(ty: &core::LiteralType) -> Value {
    let Some(t) = ty.r#type.as_ref() else { return json!({}) };
    match t {
        LitType::Simple(s) => match S::try_from(*s) {
            Ok(S::Integer) => json!({"type": "integer"}),
            Ok(S::Float) => json!({"type": "number"}),
            Ok(S::String) => json!({"type": "string"}),
            Ok(S::Boolean) => json!({"type": "boolean"}),
            Ok(S::Datetime) => json!({"type": "string", "format": "date-time"}),
            Ok(S::Duration) => json!({"type": "number", "format": "time-delta"}),
            Ok(S::None) => json!({"type": "null"}),
            Ok(S::Binary) => json!({"type": "string", "format": "base64"}),
            Ok(S::Struct) => match ty.metadata.as_ref() {
                Some(m) => Value::Object(struct_to_json(m)),
                None => json!({"type": "object"}),
            },
            _ => json!({}),
        },
        LitType::CollectionType(inner) => json!({"type": "array", "items": json_schema(inner)}),
        LitType::MapValueType(inner) => json!({
            "type": "object",
            "additionalProperties": json_schema(inner),
            "propertyNames": {"type": "string"},
        }),
        LitType::UnionType(u) => {
            let variants: Vec<Value> = u
                .variants
                .iter()
                .map(|v| if is_none_type(v) { json!({"type": "null"}) } else { json_schema(v) })
                .collect();
            json!({"anyOf": variants})
        }
        LitType::EnumType(e) => json!({"enum": e.values}),
        LitType::Blob(b) if is_directory(b) => json!({
            "type": "object", "title": "FlyteDirectory", "additionalProperties": false,
            "properties": {"path": {"anyOf": [{"type": "string"}, {"type": "string", "format": "path"}], "default": null}},
        }),
        LitType::Blob(_) => json!({
            "type": "object", "title": "FlyteFile", "additionalProperties": false,
            "properties": {
                "path": {"anyOf": [{"type": "string"}, {"type": "string", "format": "path"}], "default": null},
                "metadata": {"anyOf": [
                    {"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": {"type": "string"}},
                    {"type": "null"},
                ], "default": null},
            },
        }),
        LitType::StructuredDatasetType(_) => json!({
            "type": "object", "title": "StructuredDataset", "additionalProperties": false,
            "properties": {
                "uri": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null},
                "file_format": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": ""},
            },
        }),
        LitType::Schema(_) => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::parse_type_expr;

    #[test]
    fn field_schemas_match_mashumaro() {
        let s = |t: &str| json_schema(&parse_type_expr(t).unwrap());
        assert_eq!(s("optional<integer>"), json!({"anyOf": [{"type": "integer"}, {"type": "null"}]}));
        assert_eq!(
            s("map<list<integer>>"),
            json!({"type": "object", "propertyNames": {"type": "string"},
                   "additionalProperties": {"type": "array", "items": {"type": "integer"}}})
        );
        assert_eq!(s("enum<red, green>"), json!({"enum": ["red", "green"]}));
        assert_eq!(s("duration"), json!({"type": "number", "format": "time-delta"}));
    }

    #[test]
    fn dataclass_schema_lists_required_fields_in_order() {
        let int = parse_type_expr("integer").unwrap();
        let fields = [
            SchemaField { name: "b", ty: &int, default: None },
            SchemaField { name: "a", ty: &int, default: Some(json!(3)) },
        ];
        assert_eq!(
            dataclass_schema("D", &fields),
            json!({"type": "object", "title": "D", "additionalProperties": false, "required": ["b"],
                   "properties": {"b": {"type": "integer"}, "a": {"type": "integer", "default": 3}}})
        );
        assert_eq!(dataclass_schema("E", &[]), json!({"type": "object", "title": "E", "additionalProperties": false}));
    }
}
