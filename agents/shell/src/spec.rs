//! What a shell task asks for, read and validated from its template at create time, so
//! every mistake in a template is an `INVALID_ARGUMENT` before anything runs.
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tern_agent_api::core;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::outputs::describe_type;
use tern_agent_api::prelude::AgentError;
use tern_type_transformers::render::struct_to_json;

use crate::codes;
use crate::template::{expand, Vars};

fn bad(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(codes::BAD_TEMPLATE, message)
}

/// Where an output's text or file comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Stdout,
    /// Relative to the working directory (checked: no `..`, not absolute).
    File(PathBuf),
}

/// What an output becomes, from the interface's declared type.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Integer,
    Float,
    Boolean,
    /// JSON object → generic Struct.
    Struct,
    /// Uploaded to the data store; a Blob literal of this type.
    File(core::BlobType),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub name: String,
    pub source: Source,
    pub kind: Kind,
}

/// The `custom` settings, before anything is rendered.
#[derive(Debug, Clone, Default)]
pub struct Custom {
    /// Output name → the raw `path` of a file source, `None` for stdout.
    outputs: Vec<(String, Option<String>)>,
    pub timeout: Option<Duration>,
    pub workdir: Option<PathBuf>,
}

impl Custom {
    pub fn parse(custom: Option<&prost_types::Struct>) -> Result<Self, AgentError> {
        let Some(custom) = custom else { return Ok(Self::default()) };
        let custom = struct_to_json(custom);
        for key in custom.keys() {
            if !matches!(key.as_str(), "outputs" | "timeout_sec" | "workdir") {
                return Err(bad(format!("custom.{key} is not a shell setting (known: outputs, timeout_sec, workdir)")));
            }
        }
        let outputs = match custom.get("outputs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map.iter().map(|(name, v)| output_source(name, v)).collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("custom.outputs must be a mapping of output name to {\"from\": ...}")),
        };
        let timeout = match custom.get("timeout_sec") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_f64()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| bad(format!("custom.timeout_sec must be a positive number of seconds, got {n}")))?,
            ),
            Some(other) => return Err(bad(format!("custom.timeout_sec must be a number of seconds, got {other}"))),
        };
        let workdir = match custom.get("workdir") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if Path::new(s).is_absolute() => Some(PathBuf::from(s)),
            Some(other) => return Err(bad(format!("custom.workdir must be an absolute directory path, got {other}"))),
        };
        Ok(Self { outputs, timeout, workdir })
    }
}

fn output_source(name: &str, v: &Value) -> Result<(String, Option<String>), AgentError> {
    let spec: &Map<String, Value> =
        v.as_object().ok_or_else(|| bad(format!("custom.outputs.{name} must be {{\"from\": \"stdout\"}} or {{\"from\": \"file\", \"path\": ...}}")))?;
    let from = spec.get("from").and_then(Value::as_str).unwrap_or_default();
    let path = spec.get("path").and_then(Value::as_str).map(str::to_owned);
    match (from, &path) {
        ("stdout", None) => {}
        ("file", Some(p)) if !p.is_empty() => {}
        ("file", _) => return Err(bad(format!("custom.outputs.{name}: \"from\": \"file\" needs a \"path\""))),
        ("stdout", Some(_)) => return Err(bad(format!("custom.outputs.{name}: \"path\" only goes with \"from\": \"file\""))),
        (other, _) => {
            return Err(bad(format!("custom.outputs.{name}.from must be \"stdout\" or \"file\", got {other:?}")))
        }
    }
    Ok((name.to_owned(), path))
}

/// The smaller of the two timeouts a template may set.
pub fn effective_timeout(custom: Option<Duration>, metadata: Option<&core::TaskMetadata>) -> Result<Option<Duration>, AgentError> {
    let declared = match metadata.and_then(|m| m.timeout.as_ref()) {
        None => None,
        Some(d) if d.seconds == 0 && d.nanos == 0 => None,
        Some(d) if d.seconds < 0 || d.nanos < 0 => {
            return Err(bad(format!("metadata.timeout must not be negative, got {}s", d.seconds)))
        }
        Some(d) => Some(Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs())),
    };
    Ok(match (custom, declared) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// A fully rendered command, ready to run.
#[derive(Debug, Clone)]
pub struct ShellSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub outputs: Vec<OutputSpec>,
}

impl ShellSpec {
    pub fn render(template: &core::TaskTemplate, custom: &Custom, vars: &Vars) -> Result<Self, AgentError> {
        let container = match template.target.as_ref() {
            Some(core::task_template::Target::Container(c)) => c,
            _ => return Err(bad("a shell task needs template.container with the command to run")),
        };
        let mut words = Vec::with_capacity(container.command.len() + container.args.len());
        for (i, w) in container.command.iter().enumerate() {
            words.push(expand(w, vars, &format!("container.command[{i}]"))?);
        }
        for (i, w) in container.args.iter().enumerate() {
            words.push(expand(w, vars, &format!("container.args[{i}]"))?);
        }
        let mut words = words.into_iter();
        let program = words.next().filter(|p| !p.is_empty()).ok_or_else(|| {
            bad("container.command (then container.args) must name the program to run, e.g. [\"sh\", \"-c\", \"...\"]")
        })?;
        let env = container
            .env
            .iter()
            .map(|kv| Ok((kv.key.clone(), expand(&kv.value, vars, &format!("container.env.{}", kv.key))?)))
            .collect::<Result<_, AgentError>>()?;
        let outputs = output_specs(template.interface.as_ref(), custom, vars)?;
        Ok(Self { program, args: words.collect(), env, outputs })
    }
}

/// Pairs each declared output with its source; both sides must name the same outputs.
fn output_specs(interface: Option<&core::TypedInterface>, custom: &Custom, vars: &Vars) -> Result<Vec<OutputSpec>, AgentError> {
    let declared = interface.and_then(|i| i.outputs.as_ref()).map(|v| &v.variables);
    let mut specs = Vec::new();
    for (name, path) in &custom.outputs {
        let var = declared.and_then(|d| d.get(name)).ok_or_else(|| {
            bad(format!("custom.outputs.{name} is not an output of the task interface; declare it there with its type"))
        })?;
        let source = match path {
            None => Source::Stdout,
            Some(p) => Source::File(relative_path(name, &expand(p, vars, &format!("custom.outputs.{name}.path"))?)?),
        };
        specs.push(OutputSpec { name: name.clone(), source, kind: kind_of(name, var)? });
    }
    if let Some(declared) = declared {
        let mut missing: Vec<&String> = declared.keys().filter(|n| !specs.iter().any(|s| &s.name == *n)).collect();
        missing.sort();
        if let Some(name) = missing.first() {
            return Err(bad(format!(
                "output {name:?} is declared by the interface but custom.outputs does not say where it comes from \
                 (add \"{name}\": {{\"from\": \"stdout\"}} or {{\"from\": \"file\", \"path\": ...}})"
            )));
        }
    }
    Ok(specs)
}

fn kind_of(name: &str, var: &core::Variable) -> Result<Kind, AgentError> {
    use core::SimpleType as S;
    let ty = var.r#type.as_ref();
    let kind = match ty.and_then(|t| t.r#type.as_ref()) {
        Some(LitType::Simple(s)) => match S::try_from(*s) {
            Ok(S::String) => Some(Kind::String),
            Ok(S::Integer) => Some(Kind::Integer),
            Ok(S::Float) => Some(Kind::Float),
            Ok(S::Boolean) => Some(Kind::Boolean),
            Ok(S::Struct) => Some(Kind::Struct),
            _ => None,
        },
        Some(LitType::Blob(b)) if b.dimensionality == core::blob_type::BlobDimensionality::Single as i32 => {
            Some(Kind::File(b.clone()))
        }
        _ => None,
    };
    kind.ok_or_else(|| {
        bad(format!(
            "output {name:?} has type {}, which a shell task cannot produce (supported: string, integer, float, boolean, struct, file)",
            ty.map(describe_type).unwrap_or_else(|| "unknown".into())
        ))
    })
}

fn relative_path(name: &str, path: &str) -> Result<PathBuf, AgentError> {
    let p = PathBuf::from(path);
    let escapes = p.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_)));
    if path.is_empty() || escapes {
        return Err(bad(format!(
            "custom.outputs.{name}.path must be a relative path inside the working directory, got {path:?}"
        )));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::render::json_to_struct;

    fn custom(v: Value) -> Result<Custom, AgentError> {
        Custom::parse(Some(&json_to_struct(v.as_object().unwrap())))
    }

    fn simple(t: core::SimpleType) -> core::Variable {
        core::Variable {
            r#type: Some(core::LiteralType { r#type: Some(LitType::Simple(t as i32)), ..Default::default() }),
            ..Default::default()
        }
    }

    fn template(outputs: Vec<(&str, core::Variable)>) -> core::TaskTemplate {
        core::TaskTemplate {
            target: Some(core::task_template::Target::Container(core::Container {
                command: vec!["echo".into()],
                args: vec!["{{.inputs.x}}".into()],
                env: vec![core::KeyValuePair { key: "OUT".into(), value: "{{.outputPrefix}}/x".into() }],
                ..Default::default()
            })),
            interface: Some(core::TypedInterface {
                inputs: None,
                outputs: Some(core::VariableMap {
                    variables: outputs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
                }),
            }),
            ..Default::default()
        }
    }

    fn vars() -> Vars {
        Vars { inputs: [("x".to_owned(), "1".to_owned())].into(), output_prefix: "p".into(), workdir: Some("/w".into()) }
    }

    #[test]
    fn renders_command_env_and_outputs() {
        let c = custom(json!({"outputs": {"n": {"from": "stdout"}, "f": {"from": "file", "path": "out/{{.inputs.x}}.csv"}}}))
            .unwrap();
        let file = core::Variable {
            r#type: Some(core::LiteralType {
                r#type: Some(LitType::Blob(core::BlobType { format: "csv".into(), dimensionality: 0 })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = ShellSpec::render(&template(vec![("n", simple(core::SimpleType::Integer)), ("f", file)]), &c, &vars())
            .unwrap();
        assert_eq!(spec.program, "echo");
        assert_eq!(spec.args, ["1"]);
        assert_eq!(spec.env, [("OUT".to_owned(), "p/x".to_owned())]);
        let f = spec.outputs.iter().find(|o| o.name == "f").unwrap();
        assert_eq!(f.source, Source::File("out/1.csv".into()));
        assert!(matches!(f.kind, Kind::File(_)));
    }

    #[test]
    fn rejects_inconsistent_templates() {
        let t = template(vec![("n", simple(core::SimpleType::Integer))]);
        let err = ShellSpec::render(&t, &Custom::default(), &vars()).unwrap_err();
        assert!(err.message.contains("\"n\" is declared"), "{err}");
        let c = custom(json!({"outputs": {"n": {"from": "stdout"}, "extra": {"from": "stdout"}}})).unwrap();
        assert!(ShellSpec::render(&t, &c, &vars()).unwrap_err().message.contains("custom.outputs.extra"));
        let c = custom(json!({"outputs": {"n": {"from": "file", "path": "../etc/passwd"}}})).unwrap();
        assert!(ShellSpec::render(&t, &c, &vars()).unwrap_err().message.contains("relative path"));
        let t2 = template(vec![("n", simple(core::SimpleType::Datetime))]);
        let c = custom(json!({"outputs": {"n": {"from": "stdout"}}})).unwrap();
        assert!(ShellSpec::render(&t2, &c, &vars()).unwrap_err().message.contains("datetime"));
        assert!(custom(json!({"outputs": {"n": {"from": "stdin"}}})).is_err());
        assert!(custom(json!({"timeout_sec": 0})).is_err());
        assert!(custom(json!({"workdir": "relative/dir"})).is_err());
        assert!(custom(json!({"timeout": 5})).unwrap_err().message.contains("custom.timeout"));
        let no_container = core::TaskTemplate::default();
        assert!(ShellSpec::render(&no_container, &Custom::default(), &vars()).unwrap_err().message.contains("container"));
    }

    #[test]
    fn the_smaller_timeout_wins() {
        let meta = core::TaskMetadata { timeout: Some(prost_types::Duration { seconds: 5, nanos: 0 }), ..Default::default() };
        let s = Duration::from_secs;
        assert_eq!(effective_timeout(Some(s(9)), Some(&meta)).unwrap(), Some(s(5)));
        assert_eq!(effective_timeout(Some(s(2)), Some(&meta)).unwrap(), Some(s(2)));
        assert_eq!(effective_timeout(None, Some(&meta)).unwrap(), Some(s(5)));
        assert_eq!(effective_timeout(None, None).unwrap(), None);
    }
}
