//! Type expressions: the short text form of a Flyte `LiteralType` used in workflow
//! YAML (`integer`, `list<string>`, `optional<file>`, …) and in every message.
//!
//! Grammar (whitespace is ignored between tokens):
//! ```text
//! type   := name | name '<' args '>'
//! name   := integer | float | string | boolean | datetime | duration | struct | none
//!         | file | directory | dataframe        (optionally  <format>,  e.g. file<csv>)
//!         | list<type> | map<type> | optional<type> | union<type, type, ...> | enum<v1, v2, ...>
//! ```
//! The literal types built here are the ones flytekit writes for the matching Python
//! types, so a Tern workflow and a flytekit task agree on the wire.
use tern_agent_api::core;
use tern_agent_api::core::literal_type::Type as LitType;

/// Why a type expression or a value text could not be read. Messages name the offending
/// text; [`TypeError::code`] gives the stable code callers report it under.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TypeError {
    #[error("invalid type expression {text:?}: {reason}; valid types: {VALID_TYPES}")]
    BadTypeExpr { text: String, reason: String },
    #[error("cannot read {text:?} as {expected}: {reason}")]
    BadValue { expected: String, text: String, reason: String },
}

impl TypeError {
    /// Stable codes (parse range): TERN-E110 type expression, TERN-E111 value.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadTypeExpr { .. } => "TERN-E110",
            Self::BadValue { .. } => "TERN-E111",
        }
    }
}

/// Every type name `parse_type_expr` accepts, for error messages and docs.
pub const VALID_TYPES: &str = "integer, float, string, boolean, datetime, duration, struct, none, \
file, directory, dataframe (each optionally <format>), list<T>, map<T>, optional<T>, union<A, B, ...>, enum<a, b, ...>";

/// Default format flytekit gives a `StructuredDataset` (pandas/arrow write parquet).
pub const DEFAULT_DATAFRAME_FORMAT: &str = "parquet";

/// A simple (scalar) literal type.
pub fn simple(t: core::SimpleType) -> core::LiteralType {
    core::LiteralType { r#type: Some(LitType::Simple(t as i32)), ..Default::default() }
}

/// `file` (`format` empty = any format).
pub fn blob(format: &str, dimensionality: core::blob_type::BlobDimensionality) -> core::LiteralType {
    core::LiteralType {
        r#type: Some(LitType::Blob(core::BlobType {
            format: format.to_owned(),
            dimensionality: dimensionality as i32,
        })),
        ..Default::default()
    }
}

/// `dataframe` with the given format and no declared columns.
pub fn dataframe(format: &str) -> core::LiteralType {
    core::LiteralType {
        r#type: Some(LitType::StructuredDatasetType(core::StructuredDatasetType {
            format: format.to_owned(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn list(inner: core::LiteralType) -> core::LiteralType {
    core::LiteralType { r#type: Some(LitType::CollectionType(Box::new(inner))), ..Default::default() }
}

pub fn map(inner: core::LiteralType) -> core::LiteralType {
    core::LiteralType { r#type: Some(LitType::MapValueType(Box::new(inner))), ..Default::default() }
}

/// A union whose variants carry flytekit's structure tags (flytekit picks the variant
/// of a union *value* by that tag, so untagged variants would not round-trip).
pub fn union(variants: Vec<core::LiteralType>) -> core::LiteralType {
    let variants = variants.into_iter().map(with_flytekit_tag).collect();
    core::LiteralType { r#type: Some(LitType::UnionType(core::UnionType { variants })), ..Default::default() }
}

/// `Optional[T]` as flytekit writes it: `union<T, none>`.
pub fn optional(inner: core::LiteralType) -> core::LiteralType {
    union(vec![inner, simple(core::SimpleType::None)])
}

pub fn enumeration(values: Vec<String>) -> core::LiteralType {
    core::LiteralType { r#type: Some(LitType::EnumType(core::EnumType { values })), ..Default::default() }
}

/// The name of the flytekit transformer that produces `ty`, which flytekit uses as the
/// `TypeStructure.tag` of union variants.
pub fn flytekit_tag(ty: &core::LiteralType) -> Option<&'static str> {
    use core::SimpleType as S;
    Some(match ty.r#type.as_ref()? {
        LitType::Simple(s) => match S::try_from(*s).ok()? {
            S::Integer => "int",
            S::Float => "float",
            S::String => "str",
            S::Boolean => "bool",
            S::Datetime => "datetime",
            S::Duration => "timedelta",
            S::None => "none",
            // A dataclass carries its schema / field types; a bare struct is a `dict`.
            S::Struct if crate::literals::is_dataclass_type(ty) => "Object-Dataclass-Transformer",
            S::Struct => "Typed Dict",
            S::Binary | S::Error => return None,
        },
        LitType::CollectionType(_) => "Typed List",
        LitType::MapValueType(_) => "Typed Dict",
        LitType::Blob(b) if b.dimensionality == core::blob_type::BlobDimensionality::Multipart as i32 => {
            "FlyteDirectory"
        }
        LitType::Blob(_) => "FlyteFilePath",
        LitType::StructuredDatasetType(_) => "StructuredDataset Transformer",
        LitType::UnionType(_) => "Typed Union",
        LitType::EnumType(_) => "DefaultEnumTransformer",
        LitType::Schema(_) => return None,
    })
}

fn with_flytekit_tag(mut ty: core::LiteralType) -> core::LiteralType {
    if ty.structure.is_none() {
        if let Some(tag) = flytekit_tag(&ty) {
            ty.structure = Some(core::TypeStructure { tag: tag.to_owned(), ..Default::default() });
        }
    }
    ty
}

/// Parses a type expression such as `map<list<integer>>`.
pub fn parse_type_expr(text: &str) -> Result<core::LiteralType, TypeError> {
    let tokens = tokenize(text)?;
    let mut p = Parser { text, tokens, pos: 0 };
    let ty = p.parse_type()?;
    match p.tokens.get(p.pos) {
        None => Ok(ty),
        Some(t) => Err(p.error(format!("unexpected {:?} after a complete type", t.text))),
    }
}

/// The type expression of a literal type (inverse of [`parse_type_expr`] for the types it
/// builds; other types get a readable form), for messages.
pub fn type_expr(ty: &core::LiteralType) -> String {
    use core::SimpleType as S;
    let Some(t) = ty.r#type.as_ref() else { return "unknown".into() };
    match t {
        LitType::Simple(s) => match S::try_from(*s) {
            Ok(S::Integer) => "integer".into(),
            Ok(S::Float) => "float".into(),
            Ok(S::String) => "string".into(),
            Ok(S::Boolean) => "boolean".into(),
            Ok(S::Datetime) => "datetime".into(),
            Ok(S::Duration) => "duration".into(),
            Ok(S::Struct) => "struct".into(),
            Ok(S::None) => "none".into(),
            Ok(S::Binary) => "binary".into(),
            Ok(S::Error) => "error".into(),
            Err(_) => format!("simple({s})"),
        },
        LitType::CollectionType(inner) => format!("list<{}>", type_expr(inner)),
        LitType::MapValueType(inner) => format!("map<{}>", type_expr(inner)),
        LitType::Blob(b) => {
            let name = if b.dimensionality == core::blob_type::BlobDimensionality::Multipart as i32 {
                "directory"
            } else {
                "file"
            };
            if b.format.is_empty() {
                name.into()
            } else {
                format!("{name}<{}>", b.format)
            }
        }
        LitType::StructuredDatasetType(sd) => {
            let mut s = match sd.format.as_str() {
                DEFAULT_DATAFRAME_FORMAT => "dataframe".to_owned(),
                "" => "dataframe<any>".to_owned(),
                f => format!("dataframe<{f}>"),
            };
            if !sd.columns.is_empty() {
                let cols: Vec<String> = sd
                    .columns
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {}",
                            c.name,
                            c.literal_type.as_ref().map(type_expr).unwrap_or_else(|| "unknown".into())
                        )
                    })
                    .collect();
                s.push_str(&format!("[{}]", cols.join(", ")));
            }
            s
        }
        LitType::Schema(_) => "schema".into(),
        LitType::EnumType(e) => format!("enum<{}>", e.values.join(", ")),
        LitType::UnionType(u) => {
            let none = simple(S::None);
            let is_none = |v: &core::LiteralType| v.r#type == none.r#type;
            if u.variants.len() == 2 && is_none(&u.variants[1]) && !is_none(&u.variants[0]) {
                return format!("optional<{}>", type_expr(&u.variants[0]));
            }
            format!("union<{}>", u.variants.iter().map(type_expr).collect::<Vec<_>>().join(", "))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token<'a> {
    text: &'a str,
    at: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, TypeError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if matches!(c, '<' | '>' | ',') {
            out.push(Token { text: &text[i..i + 1], at: i });
            chars.next();
        } else if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') {
            let mut end = i;
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || matches!(d, '_' | '-' | '.' | '/') {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token { text: &text[i..end], at: i });
        } else {
            return Err(TypeError::BadTypeExpr {
                text: text.to_owned(),
                reason: format!("unexpected character {c:?} at position {i}"),
            });
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, reason: String) -> TypeError {
        TypeError::BadTypeExpr { text: self.text.to_owned(), reason }
    }

    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos)
    }

    fn next_word(&mut self, what: &str) -> Result<&'a str, TypeError> {
        match self.tokens.get(self.pos).cloned() {
            Some(t) if !matches!(t.text, "<" | ">" | ",") => {
                self.pos += 1;
                Ok(t.text)
            }
            Some(t) => Err(self.error(format!("expected {what} at position {}, found {:?}", t.at, t.text))),
            None => Err(self.error(format!("expected {what}, found the end of the text"))),
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), TypeError> {
        match self.tokens.get(self.pos) {
            Some(t) if t.text == punct => {
                self.pos += 1;
                Ok(())
            }
            Some(t) => Err(self.error(format!("expected {punct:?} at position {}, found {:?}", t.at, t.text))),
            None => Err(self.error(format!("expected {punct:?}, found the end of the text"))),
        }
    }

    fn eat(&mut self, punct: &str) -> bool {
        if self.peek().is_some_and(|t| t.text == punct) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `<T, U, ...>` after a generic name; at least one argument.
    fn type_args(&mut self, name: &str) -> Result<Vec<core::LiteralType>, TypeError> {
        if !self.eat("<") {
            return Err(self.error(format!("{name} needs type arguments, e.g. {name}<integer>")));
        }
        let mut args = vec![self.parse_type()?];
        while self.eat(",") {
            args.push(self.parse_type()?);
        }
        self.expect(">")?;
        Ok(args)
    }

    fn one_arg(&mut self, name: &str) -> Result<core::LiteralType, TypeError> {
        let mut args = self.type_args(name)?;
        if args.len() != 1 {
            return Err(self.error(format!("{name} takes exactly one type argument, got {}", args.len())));
        }
        Ok(args.remove(0))
    }

    /// Optional `<format>` of file/directory/dataframe; `any` means no format.
    fn format_arg(&mut self, default: &str) -> Result<String, TypeError> {
        if !self.eat("<") {
            return Ok(default.to_owned());
        }
        let f = self.next_word("a format name")?;
        self.expect(">")?;
        Ok(if f == "any" { String::new() } else { f.to_owned() })
    }

    fn parse_type(&mut self) -> Result<core::LiteralType, TypeError> {
        use core::blob_type::BlobDimensionality as D;
        use core::SimpleType as S;
        let name = self.next_word("a type name")?;
        Ok(match name {
            "integer" => simple(S::Integer),
            "float" => simple(S::Float),
            "string" => simple(S::String),
            "boolean" => simple(S::Boolean),
            "datetime" => simple(S::Datetime),
            "duration" => simple(S::Duration),
            "struct" => simple(S::Struct),
            "none" => simple(S::None),
            "file" => blob(&self.format_arg("")?, D::Single),
            "directory" => blob(&self.format_arg("")?, D::Multipart),
            "dataframe" => dataframe(&self.format_arg(DEFAULT_DATAFRAME_FORMAT)?),
            "list" => list(self.one_arg("list")?),
            "map" => map(self.one_arg("map")?),
            "optional" => optional(self.one_arg("optional")?),
            "union" => {
                let args = self.type_args("union")?;
                if args.len() < 2 {
                    return Err(self.error("union needs at least two variants (use optional<T> for T or none)".into()));
                }
                union(args)
            }
            "enum" => {
                self.expect("<")?;
                let mut values = vec![self.next_word("an enum value")?.to_owned()];
                while self.eat(",") {
                    values.push(self.next_word("an enum value")?.to_owned());
                }
                self.expect(">")?;
                enumeration(values)
            }
            other => return Err(self.error(format!("unknown type {other:?}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let ty = parse_type_expr(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(type_expr(&ty), text, "type_expr(parse({text}))");
        assert_eq!(parse_type_expr(&type_expr(&ty)).unwrap(), ty);
    }

    #[test]
    fn parses_and_renders_every_type() {
        for t in [
            "integer",
            "float",
            "string",
            "boolean",
            "datetime",
            "duration",
            "struct",
            "none",
            "file",
            "directory",
            "dataframe",
            "file<csv>",
            "directory<parquet>",
            "dataframe<csv>",
            "dataframe<any>",
            "list<integer>",
            "map<string>",
            "optional<integer>",
            "union<integer, string, none>",
            "list<map<optional<file>>>",
            "enum<red, green>",
        ] {
            round_trip(t);
        }
    }

    #[test]
    fn builds_flytekit_shapes() {
        let df = parse_type_expr("dataframe").unwrap();
        match df.r#type {
            Some(LitType::StructuredDatasetType(sd)) => assert_eq!(sd.format, "parquet"),
            other => panic!("{other:?}"),
        }
        let dir = parse_type_expr("directory").unwrap();
        match dir.r#type {
            Some(LitType::Blob(b)) => {
                assert_eq!(b.dimensionality, core::blob_type::BlobDimensionality::Multipart as i32)
            }
            other => panic!("{other:?}"),
        }
        let opt = parse_type_expr("optional<integer>").unwrap();
        let Some(LitType::UnionType(u)) = opt.r#type else { panic!("not a union") };
        assert_eq!(u.variants.len(), 2);
        assert_eq!(u.variants[0].structure.as_ref().unwrap().tag, "int");
        assert_eq!(u.variants[1].structure.as_ref().unwrap().tag, "none");
        assert_eq!(u.variants[1].r#type, Some(LitType::Simple(core::SimpleType::None as i32)));
    }

    #[test]
    fn tolerates_whitespace() {
        assert_eq!(parse_type_expr("  map< list <integer> > ").unwrap(), map(list(simple(core::SimpleType::Integer))));
    }

    #[test]
    fn errors_name_the_text_and_list_valid_types() {
        for (text, needle) in [
            ("lst<integer>", "unknown type \"lst\""),
            ("list", "needs type arguments"),
            ("list<integer", "expected \">\""),
            ("list<integer, string>", "exactly one"),
            ("integer>", "unexpected \">\""),
            ("union<integer>", "at least two"),
            ("", "expected a type name"),
            ("map<$>", "unexpected character '$'"),
        ] {
            let e = parse_type_expr(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains(&format!("{text:?}")), "{text:?}: {e}");
            assert!(e.contains("valid types: integer, float"), "{e}");
        }
    }
}
