//! `{{.inputs.NAME}}`, `{{.outputPrefix}}` and `{{.workdir}}` placeholders in command
//! lines, environment values and output paths.
//!
//! The syntax follows FlytePropeller's container templates: spaces inside the braces are
//! allowed, the keyword may start with `.` or `$` and is case-insensitive
//! (`{{ .Inputs.n }}`); input names are case-sensitive. Every `{{...}}` is a placeholder:
//! one this agent does not know (e.g. propeller's `{{.rawOutputDataPrefix}}`) is an error
//! naming it, never passed through silently.
use std::collections::BTreeMap;

use tern_agent_api::prelude::AgentError;

use crate::codes;

/// The values placeholders expand to.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// Input name → its text (see `inputs::input_text`).
    pub inputs: BTreeMap<String, String>,
    pub output_prefix: String,
    /// `None` while expanding the workdir setting itself.
    pub workdir: Option<String>,
}

fn unknown(message: String) -> AgentError {
    AgentError::invalid_argument(codes::UNKNOWN_PLACEHOLDER, message)
}

/// Expands every placeholder in `text`; `what` names the field for messages.
pub fn expand(text: &str, vars: &Vars, what: &str) -> Result<String, AgentError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else { break };
        out.push_str(&rest[..open]);
        let raw = &rest[open..open + 2 + close + 2];
        out.push_str(&resolve(raw, &rest[open + 2..open + 2 + close], vars, what)?);
        rest = &rest[open + 2 + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(raw: &str, inner: &str, vars: &Vars, what: &str) -> Result<String, AgentError> {
    let name = inner.trim();
    let keyword = name.strip_prefix('.').or_else(|| name.strip_prefix('$'));
    let lower = keyword.map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("outputprefix") => Ok(vars.output_prefix.clone()),
        Some("workdir") => vars
            .workdir
            .clone()
            .ok_or_else(|| unknown(format!("{what}: {raw} cannot be used here (the working directory is being decided)"))),
        Some(k) if k.starts_with("inputs.") => {
            let input = &keyword.unwrap_or_default()["inputs.".len()..];
            vars.inputs.get(input).cloned().ok_or_else(|| {
                let known: Vec<&str> = vars.inputs.keys().map(String::as_str).collect();
                unknown(format!(
                    "{what}: placeholder {raw} names input {input:?}, but the task's inputs are: {}",
                    if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
                ))
            })
        }
        _ => Err(unknown(format!(
            "{what}: unknown placeholder {raw}; known placeholders are {{{{.inputs.NAME}}}}, {{{{.outputPrefix}}}} and {{{{.workdir}}}}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            inputs: [("n".to_owned(), "3".to_owned()), ("Name".to_owned(), "x y".to_owned())].into(),
            output_prefix: "s3://b/out".into(),
            workdir: Some("/tmp/w".into()),
        }
    }

    #[test]
    fn expands_known_placeholders_in_propeller_syntax() {
        let t = "n={{.inputs.n}} {{ .Inputs.Name }} {{$outputPrefix}}/{{.OUTPUTPREFIX}} in {{ .workdir }}";
        assert_eq!(expand(t, &vars(), "arg").unwrap(), "n=3 x y s3://b/out/s3://b/out in /tmp/w");
        assert_eq!(expand("awk '{print $1}' {{ unclosed", &vars(), "arg").unwrap(), "awk '{print $1}' {{ unclosed");
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let e = expand("{{.rawOutputDataPrefix}}/x", &vars(), "args[1]").unwrap_err();
        assert_eq!(e.code, codes::UNKNOWN_PLACEHOLDER);
        assert!(e.message.contains("args[1]") && e.message.contains("{{.rawOutputDataPrefix}}"), "{e}");
        let e = expand("{{.inputs.name}}", &vars(), "arg").unwrap_err();
        assert!(e.message.contains("\"name\"") && e.message.contains("Name, n"), "{e}");
        let no_workdir = Vars { workdir: None, ..vars() };
        assert!(expand("{{.workdir}}", &no_workdir, "workdir").is_err());
        assert!(expand("{{inputs.n}}", &vars(), "arg").is_err(), "the leading dot is required");
    }
}
