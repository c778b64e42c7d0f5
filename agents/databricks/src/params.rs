//! The task's inputs as Databricks parameters, the way flytekit passes them.
//!
//! - **Python tasks** (`spark_python_task`): the parameters are the container args, which
//!   propeller (or `tern run`) has already rendered: `pyflyte-execute --inputs
//!   <prefix>/inputs.pb --output-prefix … -- task-module … task-name …`. The entrypoint on
//!   the cluster reads the inputs from `inputs.pb` itself. Args still holding a propeller
//!   variable (`{{.input}}`, `{{.outputPrefix}}`, …) mean nobody rendered them: refused.
//! - **Notebook tasks** (`notebook_task`): `notebookBaseParameters` become
//!   `base_parameters` (Databricks widgets take text: numbers and booleans are written as
//!   JSON text). A value may name an input, `{{.inputs.NAME}}`, replaced by its value
//!   (Tern's addition: flytekit passes notebooks no inputs at all).
use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::literal_to_json;

use crate::codes;

/// The rendered container args, checked.
pub fn python_parameters(args: &[String]) -> Result<Vec<String>, AgentError> {
    for a in args {
        if let Some(start) = a.find("{{.") {
            let var: String = a[start..].chars().take_while(|c| *c != '}').chain("}}".chars()).take(60).collect();
            return Err(codes::bad_template(format!(
                "container arg {var} is a propeller template variable nobody rendered: the caller (propeller, `tern run`) \
                 renders them before CreateTask"
            )));
        }
    }
    Ok(args.to_vec())
}

/// `notebookBaseParameters` as Databricks `base_parameters`, with `{{.inputs.NAME}}` replaced.
pub fn notebook_parameters(base: &Map<String, Value>, inputs: &core::LiteralMap) -> Result<Map<String, Value>, AgentError> {
    let mut out = Map::new();
    for (key, value) in base {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            Value::Null => String::new(),
            other => {
                return Err(codes::bad_template(format!(
                    "notebookBaseParameters.{key} must be a text (Databricks widgets take text), got {other}"
                )))
            }
        };
        out.insert(key.clone(), Value::String(substitute(&text, inputs)?));
    }
    Ok(out)
}

fn substitute(text: &str, inputs: &core::LiteralMap) -> Result<String, AgentError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{.inputs.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{{.inputs.".len()..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let literal = inputs.literals.get(name).ok_or_else(|| {
            let known: Vec<&String> = inputs.literals.keys().collect();
            codes::bad_template(format!("{{{{.inputs.{name}}}}} names no input (inputs: {known:?})"))
        })?;
        match literal_to_json(literal) {
            Value::String(s) => out.push_str(&s),
            Value::Null => {}
            v @ (Value::Number(_) | Value::Bool(_)) => out.push_str(&v.to_string()),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::{FlyteType, LiteralMapBuilder};

    #[test]
    fn rendered_args_pass_unrendered_are_refused() {
        let args: Vec<String> = ["pyflyte-execute", "--inputs", "s3://b/x/inputs.pb"].map(String::from).to_vec();
        assert_eq!(python_parameters(&args).unwrap(), args);
        let e = python_parameters(&["--output-prefix".into(), "{{.outputPrefix}}".into()]).unwrap_err();
        assert_eq!(e.code, codes::BAD_TEMPLATE);
        assert!(e.message.contains("{{.outputPrefix}}"), "{}", e.message);
    }

    #[test]
    fn notebook_parameters_are_text_with_inputs() {
        let inputs = LiteralMapBuilder::new().with("n", &3i64).unwrap().with("day", &"2026-01-02".to_owned()).unwrap().build();
        let base = json!({"n": "{{.inputs.n}}", "label": "day={{.inputs.day}}!", "flag": true, "k": 2, "keep": "{{x}}"});
        let got = notebook_parameters(base.as_object().unwrap(), &inputs).unwrap();
        assert_eq!(Value::Object(got), json!({"n": "3", "label": "day=2026-01-02!", "flag": "true", "k": "2", "keep": "{{x}}"}));
        let bad = json!({"x": "{{.inputs.nope}}"});
        assert_eq!(notebook_parameters(bad.as_object().unwrap(), &inputs).unwrap_err().code, codes::BAD_TEMPLATE);
        let nested = json!({"x": {"a": 1}});
        assert!(notebook_parameters(nested.as_object().unwrap(), &inputs).is_err());
        let _ = i64::literal_type();
    }
}
