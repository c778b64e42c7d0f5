//! Python's text forms of JSON values, because flytekit's webhook connector splices
//! values into strings with `str(value)` and renders msgpack inputs with `json.dumps`.
//!
//! - [`python_str`]: `str(v)` for the value Python would hold: `None`, `True`/`False`,
//!   `1.0`/`1e+16` (Python's float repr), and `repr()` of lists and dicts (single quotes).
//! - [`python_json_dumps`]: `json.dumps(v)` with its defaults: `", "`/`": "` separators,
//!   non-ASCII escaped as `\uXXXX`.
//!
//! Object keys come out in serde_json's order (sorted), where Python would keep insertion
//! order; both are valid renderings of the same value.
use serde_json::{Number, Value};

/// `str(value)`.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// `repr(value)`: what `str()` of a list or dict shows for its items.
pub fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => number_repr(n),
        Value::String(s) => string_repr(s),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}: {}", string_repr(k), python_repr(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `json.dumps(value)` with Python's default options.
pub fn python_json_dumps(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_repr(n),
        Value::String(s) => json_string(s),
        Value::Array(items) => format!("[{}]", items.iter().map(python_json_dumps).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}: {}", json_string(k), python_json_dumps(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Python's truthiness: `None`, `False`, `0`, `""`, `[]`, `{}` are false.
pub fn python_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn number_repr(n: &Number) -> String {
    if n.is_f64() {
        n.as_f64().map(python_float_repr).unwrap_or_else(|| n.to_string())
    } else {
        n.to_string()
    }
}

/// `repr(float)`: the shortest round-tripping digits, written in fixed notation when the
/// decimal exponent is in [-4, 16), scientific (`1e+16`, `1e-05`) otherwise.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` prints the same shortest round-trip digits, e.g. `-1.25e-5`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if point >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// `repr(str)`: single quotes unless the text holds a `'` and no `"`; backslashes,
/// the quote and control characters escaped.
fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn str_matches_python() {
        // Expected strings are what CPython 3.11 prints.
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!(null)), "None");
        assert_eq!(python_str(&json!(1.0)), "1.0");
        assert_eq!(python_str(&json!(10)), "10");
        assert_eq!(python_str(&json!("plain")), "plain");
        assert_eq!(python_str(&json!([1, "a", null, false])), "[1, 'a', None, False]");
        assert_eq!(python_str(&json!({"k": "it's", "n": 1.5})), "{'k': \"it's\", 'n': 1.5}");
        assert_eq!(python_str(&json!(["a\\b\n"])), "['a\\\\b\\n']");
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, text) in [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (-0.0, "-0.0"),
            (1.5e300, "1.5e+300"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (123.456, "123.456"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_float_repr(f), text, "{f}");
        }
    }

    #[test]
    fn json_dumps_matches_python() {
        // python: json.dumps({"a": [1, 2.0, None, True], "é": "x\"y"})
        assert_eq!(
            python_json_dumps(&json!({"a": [1, 2.0, null, true], "é": "x\"y"})),
            "{\"a\": [1, 2.0, null, true], \"\\u00e9\": \"x\\\"y\"}"
        );
        assert_eq!(python_json_dumps(&json!("😀")), "\"\\ud83d\\ude00\"");
    }

    #[test]
    fn truthiness() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!(""), json!([]), json!({})] {
            assert!(!python_truthy(&v), "{v}");
        }
        for v in [json!(true), json!(2), json!("x"), json!([0]), json!({"a": 0})] {
            assert!(python_truthy(&v), "{v}");
        }
    }
}
