//! [`FlyteType`]: a Rust type that has a Flyte `LiteralType` and converts to and from a
//! `Literal` the way flytekit does for the equivalent Python type.
//!
//! Implemented here for `bool`, every integer type, `f32`/`f64`, `String`, [`crate::Bytes`],
//! `chrono::DateTime<Utc>`, `chrono::Duration`, `std::time::Duration`, `Vec<T>`,
//! `HashMap<String, T>`/`BTreeMap<String, T>`, `Option<T>`, [`crate::Union2`]…[`crate::Union5`],
//! `serde_json::Value` and [`crate::JsonDict`]; `#[derive(FlyteType)]` does structs (flytekit
//! dataclasses) and fieldless enums.
use std::collections::BTreeMap;

use tern_agent_api::core;

use crate::error::TransformError;

pub use tern_type_transformers_derive::FlyteType;

/// A Rust type with a Flyte literal type, convertible to and from literals exactly as
/// flytekit 1.16 converts the equivalent Python type.
///
/// `from_literal` never panics: a literal of another kind, an out-of-range integer or a
/// corrupt payload is a [`TransformError`] naming the expected type and what was found.
/// Besides its own canonical form, every implementation also reads the msgpack `Binary`
/// form of its value (what Flyte hands a task when an input is bound to a dataclass
/// attribute, e.g. `dc.count`).
///
/// ```
/// use std::collections::HashMap;
/// use tern_type_transformers::{FlyteType, literal_map_get, LiteralMapBuilder};
///
/// #[derive(FlyteType, Debug, PartialEq)]
/// enum Color { Red, Green }
///
/// #[derive(FlyteType, Debug, PartialEq)]
/// struct Point {
///     x: i64,
///     y: f64,
///     label: Option<String>,
///     tags: Vec<String>,
///     color: Color,
/// }
///
/// let p = Point { x: 1, y: 2.5, label: None, tags: vec!["a".into()], color: Color::Green };
/// let literal = p.to_literal()?;            // a msgpack Binary literal, as flytekit writes a dataclass
/// assert_eq!(Point::from_literal(&literal)?, p);
///
/// // Task inputs and outputs are LiteralMaps.
/// let outputs = LiteralMapBuilder::new().with("point", &p)?.with("n", &7u8)?.build();
/// let n: u8 = literal_map_get(&outputs, "n")?;
/// assert_eq!(n, 7);
/// let err = literal_map_get::<u8>(&outputs, "missing").unwrap_err();
/// assert_eq!(err.code(), "TERN-T007");
///
/// // Wrong kinds are errors, never panics.
/// let err = HashMap::<String, i64>::from_literal(&literal).unwrap_err();
/// assert_eq!(err.code(), "TERN-T003"); // the msgpack payload is a struct, not a map of integers
/// # Ok::<(), tern_type_transformers::TransformError>(())
/// ```
///
/// The derive refuses what has no flytekit form, at compile time:
///
/// ```compile_fail
/// #[derive(tern_type_transformers::FlyteType)]
/// struct Meters(f64); // a tuple struct: no field names for the dataclass
/// ```
///
/// ```compile_fail
/// #[derive(tern_type_transformers::FlyteType)]
/// enum Shape { Circle(f64), Square(f64) } // data in variants: use Union2<Circle, Square>
/// ```
///
/// ```compile_fail
/// #[derive(tern_type_transformers::FlyteType)]
/// struct Job { handle: std::fs::File } // a field type without FlyteType
/// ```
pub trait FlyteType: Sized {
    /// The LiteralType flytekit writes for the equivalent Python type.
    fn literal_type() -> core::LiteralType;
    fn to_literal(&self) -> Result<core::Literal, TransformError>;
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError>;
}

/// The value named `name` in a `LiteralMap` (task inputs or outputs). A missing name is
/// [`TransformError::MissingEntry`] listing the names present; a bad value carries the name
/// in its path.
pub fn literal_map_get<T: FlyteType>(map: &core::LiteralMap, name: &str) -> Result<T, TransformError> {
    match map.literals.get(name) {
        Some(literal) => T::from_literal(literal).map_err(|e| e.at_field(name)),
        None => Err(TransformError::MissingEntry {
            name: name.to_owned(),
            present: if map.literals.is_empty() {
                "none".to_owned()
            } else {
                map.literals.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            },
        }),
    }
}

/// Sets `name` in a `LiteralMap` to the literal of `value`.
pub fn literal_map_insert<T: FlyteType>(
    map: &mut core::LiteralMap,
    name: &str,
    value: &T,
) -> Result<(), TransformError> {
    let literal = value.to_literal().map_err(|e| e.at_field(name))?;
    map.literals.insert(name.to_owned(), literal);
    Ok(())
}

/// Builds a `LiteralMap` from named values of different types.
///
/// ```
/// use tern_type_transformers::LiteralMapBuilder;
/// let map = LiteralMapBuilder::new().with("n", &3i64)?.with("s", &"x".to_string())?.build();
/// assert_eq!(map.literals.len(), 2);
/// # Ok::<(), tern_type_transformers::TransformError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct LiteralMapBuilder {
    literals: BTreeMap<String, core::Literal>,
}

impl LiteralMapBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` = `value` (replacing an earlier value of the same name).
    pub fn with<T: FlyteType>(mut self, name: &str, value: &T) -> Result<Self, TransformError> {
        let literal = value.to_literal().map_err(|e| e.at_field(name))?;
        self.literals.insert(name.to_owned(), literal);
        Ok(self)
    }

    pub fn build(self) -> core::LiteralMap {
        core::LiteralMap { literals: self.literals }
    }
}

/// A `VariableMap` entry's type for `T`: handy for building task interfaces.
pub fn variable<T: FlyteType>(description: &str) -> core::Variable {
    core::Variable { r#type: Some(T::literal_type()), description: description.to_owned(), ..Default::default() }
}
