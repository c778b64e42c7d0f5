//! Whether a value of one literal type may be bound where another is declared: Flyte's
//! compile-time casting rules (flytepropeller's type validators, flytekit's
//! `_are_types_castable`).
//!
//! - simple types must be equal (no implicit integer → float);
//! - `none` goes into any union that has a `none` variant (i.e. optional);
//! - a non-union goes into a union when at least one variant accepts it; a union goes
//!   into a type when every one of its variants does;
//! - lists and maps element-wise;
//! - files/directories: same dimensionality, formats equal or either empty;
//! - dataframes: formats equal or either empty; when both declare columns, every column
//!   of the target exists in the source with an assignable type;
//! - enums: equal value sets; an enum also goes into a string (flytekit's rule);
//! - struct → struct.
//!
//! Type metadata (`structure` tags, `annotation`, `metadata`) never affects the answer.
use tern_agent_api::core;
use tern_agent_api::core::literal_type::Type as LitType;

use crate::types::type_expr;

/// `Ok` when a value of type `from` may be bound to a slot of type `to`; otherwise a
/// message naming both types (and, for nested types, the part that differs).
pub fn check_assignable(from: &core::LiteralType, to: &core::LiteralType) -> Result<(), String> {
    match why_not(from, to) {
        None => Ok(()),
        Some(detail) => {
            let head = format!("{} is not assignable to {}", type_expr(from), type_expr(to));
            Err(if detail.is_empty() { head } else { format!("{head}: {detail}") })
        }
    }
}

/// Convenience for callers that only need the answer.
pub fn is_assignable(from: &core::LiteralType, to: &core::LiteralType) -> bool {
    why_not(from, to).is_none()
}

/// `None` = assignable; `Some(detail)` = not (detail may be empty when the top-level
/// mismatch says it all).
fn why_not(from: &core::LiteralType, to: &core::LiteralType) -> Option<String> {
    let (Some(f), Some(t)) = (from.r#type.as_ref(), to.r#type.as_ref()) else {
        return Some("a type is missing".into());
    };
    // A union source: each of its variants must fit.
    if let LitType::UnionType(fu) = f {
        if let LitType::UnionType(tu) = t {
            for v in &fu.variants {
                if !tu.variants.iter().any(|tv| why_not(v, tv).is_none()) {
                    return Some(format!("variant {} has no matching variant", type_expr(v)));
                }
            }
            return None;
        }
        for v in &fu.variants {
            if why_not(v, to).is_some() {
                return Some(format!("variant {} does not fit", type_expr(v)));
            }
        }
        return None;
    }
    // A union target: some variant must accept the source.
    if let LitType::UnionType(tu) = t {
        return if tu.variants.iter().any(|v| why_not(from, v).is_none()) {
            None
        } else {
            Some("no variant of the union accepts it".into())
        };
    }
    match (f, t) {
        (LitType::Simple(a), LitType::Simple(b)) => (a != b).then(String::new),
        (LitType::CollectionType(a), LitType::CollectionType(b)) => {
            why_not(a, b).map(|d| element("list elements", a, b, d))
        }
        (LitType::MapValueType(a), LitType::MapValueType(b)) => why_not(a, b).map(|d| element("map values", a, b, d)),
        (LitType::Blob(a), LitType::Blob(b)) => {
            if a.dimensionality != b.dimensionality {
                Some(String::new())
            } else if !formats_compatible(&a.format, &b.format) {
                Some(format!("format {:?} differs from {:?}", a.format, b.format))
            } else {
                None
            }
        }
        (LitType::StructuredDatasetType(a), LitType::StructuredDatasetType(b)) => {
            if !formats_compatible(&a.format, &b.format) {
                return Some(format!("format {:?} differs from {:?}", a.format, b.format));
            }
            if a.columns.is_empty() || b.columns.is_empty() {
                return None;
            }
            for col in &b.columns {
                let Some(src) = a.columns.iter().find(|c| c.name == col.name) else {
                    return Some(format!("column {:?} is missing", col.name));
                };
                if let (Some(st), Some(dt)) = (src.literal_type.as_ref(), col.literal_type.as_ref()) {
                    if let Some(d) = why_not(st, dt) {
                        return Some(element(&format!("column {:?}", col.name), st, dt, d));
                    }
                }
            }
            None
        }
        (LitType::EnumType(a), LitType::EnumType(b)) => {
            let mut x = a.values.clone();
            let mut y = b.values.clone();
            x.sort();
            y.sort();
            (x != y).then(|| "enum values differ".to_owned())
        }
        (LitType::EnumType(_), LitType::Simple(s)) if *s == core::SimpleType::String as i32 => None,
        (LitType::Schema(a), LitType::Schema(b)) => {
            let missing =
                b.columns.iter().find(|c| !a.columns.iter().any(|s| s.name == c.name && s.r#type == c.r#type));
            missing.map(|c| format!("column {:?} is missing", c.name))
        }
        _ => Some(String::new()),
    }
}

fn formats_compatible(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a.eq_ignore_ascii_case(b)
}

fn element(what: &str, a: &core::LiteralType, b: &core::LiteralType, detail: String) -> String {
    let head = format!("{what}: {} vs {}", type_expr(a), type_expr(b));
    if detail.is_empty() {
        head
    } else {
        format!("{head} ({detail})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::parse_type_expr;

    fn ok(from: &str, to: &str) {
        let (f, t) = (parse_type_expr(from).unwrap(), parse_type_expr(to).unwrap());
        assert_eq!(check_assignable(&f, &t), Ok(()), "{from} -> {to}");
    }

    fn no(from: &str, to: &str) -> String {
        let (f, t) = (parse_type_expr(from).unwrap(), parse_type_expr(to).unwrap());
        let e = check_assignable(&f, &t).expect_err(&format!("{from} -> {to} should be refused"));
        assert!(e.contains(from) && e.contains(to), "message names both types: {e}");
        e
    }

    fn sd(format: &str, cols: &[(&str, &str)]) -> core::LiteralType {
        core::LiteralType {
            r#type: Some(LitType::StructuredDatasetType(core::StructuredDatasetType {
                format: format.into(),
                columns: cols
                    .iter()
                    .map(|(n, t)| core::structured_dataset_type::DatasetColumn {
                        name: (*n).into(),
                        literal_type: Some(parse_type_expr(t).unwrap()),
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn simple_types_are_exact() {
        ok("integer", "integer");
        ok("struct", "struct");
        no("integer", "float");
        no("integer", "string");
        no("none", "integer");
    }

    #[test]
    fn unions_and_optionals() {
        ok("none", "optional<integer>");
        ok("integer", "optional<integer>");
        ok("string", "union<integer, string>");
        ok("optional<integer>", "optional<integer>");
        ok("optional<integer>", "union<integer, string, none>");
        no("float", "optional<integer>");
        no("optional<integer>", "integer");
        no("union<integer, string>", "optional<integer>");
        // Structure tags never matter.
        let tagged = parse_type_expr("optional<integer>").unwrap();
        let LitType::UnionType(u) = tagged.r#type.unwrap() else { panic!() };
        assert_eq!(check_assignable(&u.variants[0], &parse_type_expr("integer").unwrap()), Ok(()));
    }

    #[test]
    fn collections_element_wise() {
        ok("list<integer>", "list<integer>");
        ok("map<list<none>>", "map<list<optional<string>>>");
        let e = no("list<integer>", "list<string>");
        assert!(e.contains("list elements"), "{e}");
        no("list<integer>", "map<integer>");
    }

    #[test]
    fn blobs_by_dimensionality_and_format() {
        ok("file", "file<csv>");
        ok("file<csv>", "file");
        ok("file<CSV>", "file<csv>");
        no("file<csv>", "file<parquet>");
        no("file", "directory");
        no("directory", "file");
    }

    #[test]
    fn dataframes_by_format_and_columns() {
        ok("dataframe", "dataframe");
        ok("dataframe<any>", "dataframe<csv>");
        no("dataframe<csv>", "dataframe");
        let wide = sd("parquet", &[("a", "integer"), ("b", "string")]);
        let narrow = sd("parquet", &[("b", "string")]);
        assert_eq!(check_assignable(&wide, &narrow), Ok(()));
        let e = check_assignable(&narrow, &wide).unwrap_err();
        assert!(e.contains("column \"a\" is missing"), "{e}");
        let wrong = sd("parquet", &[("b", "integer")]);
        assert!(check_assignable(&wide, &wrong).unwrap_err().contains("column \"b\""));
        assert_eq!(check_assignable(&sd("parquet", &[]), &narrow), Ok(()));
    }

    #[test]
    fn enums() {
        ok("enum<a, b>", "enum<b, a>");
        ok("enum<a, b>", "string");
        no("enum<a, b>", "enum<a>");
        no("string", "enum<a>");
    }
}
