//! The YAML workflow format (`docs/workflows.md`) as Rust types, and its parser.
//!
//! Everything that can be checked while reading — unknown keys, type expressions, node
//! id syntax, durations — is checked inside deserialization, so the error carries the
//! line and column serde_yaml reports. Cross-references are the compiler's job.
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use tern_agent_api::core;
use tern_type_transformers::types::parse_type_expr;

use crate::error::codes;

/// A workflow as written in YAML (or built in Rust and serialized back to YAML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputSpec>,
    pub nodes: Vec<NodeSpec>,
    /// Output name → `${node.output}` (or `${inputs.x}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_yaml::Value>,
    /// What a failed node does to the rest of the workflow.
    #[serde(default, skip_serializing_if = "FailurePolicy::is_default")]
    pub failure_policy: FailurePolicy,
    /// The whole execution's deadline (final: running jobs are deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DurationSpec>,
}

/// Flyte's `WorkflowMetadata.on_failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// The first failure cancels running nodes (their jobs are deleted) and starts nothing new.
    #[default]
    FailImmediately,
    /// Nodes that do not depend on a failed node still run; the execution then fails.
    FailAfterExecutableNodesComplete,
}

impl FailurePolicy {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A workflow input: `x: integer` or `x: {type: integer, default: 3, description: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSpec {
    #[serde(rename = "type")]
    pub ty: TypeSpec,
    /// `Some(Null)` is an explicit `default: null` (none), distinct from no default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_yaml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputDecl {
    #[serde(rename = "type")]
    ty: TypeSpec,
    #[serde(default, deserialize_with = "present")]
    default: Option<serde_yaml::Value>,
    #[serde(default)]
    description: Option<String>,
}

/// Keeps an explicit `null` as `Some(Null)` (a plain `Option` would read it as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_yaml::Value>, D::Error> {
    serde_yaml::Value::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for InputSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InputSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a type expression or a mapping {type, default, description}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<InputSpec, E> {
                Ok(InputSpec { ty: TypeSpec::parse(s).map_err(E::custom)?, default: None, description: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InputSpec, A::Error> {
                let d = InputDecl::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(InputSpec { ty: d.ty, default: d.default, description: d.description })
            }
        }
        d.deserialize_any(V)
    }
}

/// A node: one task invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: NodeId,
    pub task: TaskSpec,
    /// Task input name → `${inputs.x}`, `${node.output}` or a constant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// The node's deadline over all its attempts (final), unlike `task.timeout` (one
    /// attempt, retryable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DurationSpec>,
}

/// What a node runs: becomes a `core::TaskTemplate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawTaskSpec")]
pub struct TaskSpec {
    #[serde(rename = "type")]
    pub task_type: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,
    /// The GPU model (and MIG partition) the task asks for, as flytekit's `accelerator=`
    /// writes it (`TaskTemplate.extended_resources.gpu_accelerator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<AcceleratorSpec>,
    #[serde(default)]
    pub interface: InterfaceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// May run on interruptible (spot/preemptible) capacity (`TaskMetadata.interruptible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interruptible: Option<bool>,
    /// Output caching (`metadata.discoverable` and the cache fields), as flytekit's
    /// `cache=True, cache_version=…, cache_serialize=…, cache_ignore_input_vars=…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,
}

/// `task.cache`: `{version: "1", serialize: true, ignore_inputs: [x]}`. The version is
/// required (checked by the compiler, like flytekit's "cache_version must be set").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// `discovery_version`: change it to stop reusing earlier results. A number is read as text.
    #[serde(default, deserialize_with = "scalar_text", skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `cache_serializable`: one run per key at a time; the others wait for its result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serialize: bool,
    /// `cache_ignore_input_vars`: inputs that do not count in the cache key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_inputs: Vec<String>,
}

/// A string, or a number or boolean taken as its text (`version: 1`).
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::String(s) => Ok(Some(s)),
        serde_yaml::Value::Number(n) => Ok(Some(n.to_string())),
        serde_yaml::Value::Bool(b) => Ok(Some(b.to_string())),
        serde_yaml::Value::Null => Ok(None),
        _ => Err(de::Error::custom("a cache version is text, like \"1\" or \"2024-05-01\"")),
    }
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// `TaskSpec` as read, before the cross-field checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaskSpec {
    #[serde(rename = "type")]
    task_type: String,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    custom: Option<serde_json::Value>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    container: Option<ContainerSpec>,
    #[serde(default)]
    accelerator: Option<AcceleratorSpec>,
    #[serde(default)]
    interface: InterfaceSpec,
    #[serde(default)]
    timeout: Option<DurationSpec>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    interruptible: Option<bool>,
    cache: Option<CacheSpec>,
}

impl TryFrom<RawTaskSpec> for TaskSpec {
    type Error = String;
    fn try_from(r: RawTaskSpec) -> Result<Self, String> {
        if r.sql.is_some() && r.container.is_some() {
            return Err(format!(
                "[{}] task {:?} sets both `sql` and `container`; a task has one target (TaskTemplate.target)",
                codes::BAD_TASK,
                r.task_type
            ));
        }
        if r.task_type.trim().is_empty() {
            return Err(format!("[{}] task `type` is empty", codes::BAD_TASK));
        }
        if matches!(&r.custom, Some(v) if !v.is_object()) {
            return Err(format!(
                "[{}] task `custom` must be a mapping (it becomes a google.protobuf.Struct)",
                codes::BAD_TASK
            ));
        }
        Ok(Self {
            task_type: r.task_type,
            version: r.version,
            sql: r.sql,
            custom: r.custom,
            config: r.config,
            container: r.container,
            accelerator: r.accelerator,
            interface: r.interface,
            timeout: r.timeout,
            retries: r.retries,
            interruptible: r.interruptible,
            cache: r.cache,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Container image, for agents that run containers; process-based agents (shell)
    /// ignore it, so it may be omitted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Resource requests and limits (`container.resources`), as flytekit's `Resources(...)`:
    /// `{requests: {gpu: "1"}, limits: {gpu: "1", memory: 4Gi}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
}

/// `container.resources`: quantities by resource name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<ResourceKey, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<ResourceKey, String>,
}

/// The resource names of `flyteidl.core.Resources.ResourceName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKey {
    Cpu,
    Memory,
    Gpu,
    Storage,
    EphemeralStorage,
}

/// `extended_resources.gpu_accelerator`: `{device: nvidia-tesla-t4}`, optionally `partition_size: 1g.5gb`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorSpec {
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_size: Option<String>,
}

/// The task's typed interface: name → type expression.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSpec {
    #[serde(default)]
    pub inputs: BTreeMap<String, TypeSpec>,
    #[serde(default)]
    pub outputs: BTreeMap<String, TypeSpec>,
}

/// A type expression, parsed while reading so a bad one is reported with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSpec {
    pub text: String,
    pub ty: core::LiteralType,
}

impl TypeSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_type_expr(text)
            .map(|ty| Self { text: text.trim().to_owned(), ty })
            .map_err(|e| format!("[{}] {e}", e.code()))
    }
}

impl Serialize for TypeSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for TypeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// A node id: `[A-Za-z_][A-Za-z0-9_-]*`, not `inputs` (which names workflow inputs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut chars = s.chars();
        let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !ok_first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("[{}] invalid node id {s:?}: ids match [A-Za-z_][A-Za-z0-9_-]*", codes::BAD_NODE_ID));
        }
        if s == "inputs" {
            return Err(format!(
                "[{}] node id \"inputs\" is reserved (${{inputs.x}} names workflow inputs)",
                codes::BAD_NODE_ID
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// A duration: `30s`, `1h30m`, `250ms`, or a number of seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationSpec {
    pub text: String,
    pub duration: Duration,
}

impl DurationSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: String| format!("[{}] invalid duration {text:?}: {why}", codes::BAD_DURATION);
        let d = tern_type_transformers::parse::parse_duration(text.trim()).map_err(bad)?;
        if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) {
            return Err(bad("must be positive".into()));
        }
        Ok(Self { text: text.trim().to_owned(), duration: Duration::new(d.seconds as u64, d.nanos as u32) })
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number is seconds; serde_yaml gives it as a number, not text.
        let v = serde_yaml::Value::deserialize(d)?;
        let text = match &v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            _ => {
                return Err(de::Error::custom(format!(
                    "[{}] a duration is text like 30s or a number of seconds",
                    codes::BAD_DURATION
                )))
            }
        };
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// A workflow file that could not be read as a workflow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    pub code: &'static str,
    /// File name or other label of the text.
    pub source_name: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ParseError {
    fn render(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: [{}] {}", self.source_name, self.code, self.message),
            _ => format!("{}: [{}] {}", self.source_name, self.code, self.message),
        }
    }

    fn from_yaml(source_name: &str, e: &serde_yaml::Error) -> Self {
        let loc = e.location();
        let mut message = e.to_string();
        // serde_yaml appends " at line L column C"; the location is rendered separately.
        if let Some(l) = &loc {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        // Errors raised by our own deserializers carry their code as "[TERN-Exxx] ".
        let mut code = if message.contains("unknown field") { codes::UNKNOWN_KEY } else { codes::YAML };
        if let Some(start) = message.find("[TERN-E") {
            let tail = &message[start + 1..];
            if let Some(end) = tail.find(']') {
                code = static_code(&tail[..end]).unwrap_or(code);
                message = format!("{}{}", &message[..start], tail[end + 1..].trim_start());
            }
        }
        Self {
            code,
            source_name: source_name.to_owned(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    }
}

fn static_code(code: &str) -> Option<&'static str> {
    [codes::BAD_NODE_ID, codes::BAD_TASK, codes::BAD_DURATION, codes::BAD_TYPE_EXPR, codes::UNKNOWN_KEY, codes::YAML]
        .into_iter()
        .find(|c| *c == code)
}

impl WorkflowSpec {
    /// Parses workflow YAML; `source_name` labels errors (usually the file name).
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ParseError> {
        serde_yaml::from_str(text).map_err(|e| ParseError::from_yaml(source_name, &e))
    }

    /// Reads and parses a workflow file.
    pub fn load(path: &Path) -> Result<Self, ParseError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ParseError {
            code: codes::READ_FAILED,
            source_name: name.clone(),
            line: None,
            column: None,
            message: format!("cannot read workflow file: {e}"),
        })?;
        Self::parse(&text, &name)
    }

    /// The YAML text of this spec (what the state store keeps, so an execution can be
    /// recovered even when the workflow was built in Rust).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name: wf
description: d
inputs:
  x: {type: integer, default: 3, description: "the x"}
  y: string
  z: {type: optional<integer>, default: null}
nodes:
  - id: first
    task:
      type: echo
      version: 1
      sql: "SELECT $x AS x"
      custom: {a: [1, 2]}
      config: {k: v}
      interface:
        inputs: {x: integer}
        outputs: {x: integer}
      timeout: 30s
      retries: 2
      cache: {version: 1, serialize: true, ignore_inputs: [x]}
    inputs:
      x: ${inputs.x}
    depends_on: []
outputs:
  y: ${first.x}
"#;

    #[test]
    fn parses_every_field_and_round_trips() {
        let spec = WorkflowSpec::parse(OK, "wf.yaml").unwrap();
        assert_eq!(spec.inputs["x"].default, Some(serde_yaml::Value::Number(3.into())));
        assert_eq!(spec.inputs["y"].default, None);
        assert_eq!(spec.inputs["z"].default, Some(serde_yaml::Value::Null));
        let t = &spec.nodes[0].task;
        assert_eq!(t.timeout.as_ref().unwrap().duration, Duration::from_secs(30));
        assert_eq!(t.retries, Some(2));
        assert_eq!(t.version, 1);
        let cache = t.cache.as_ref().unwrap();
        assert_eq!(
            (cache.version.as_deref(), cache.serialize, cache.ignore_inputs.as_slice()),
            (Some("1"), true, &["x".to_owned()][..])
        );
        let again = WorkflowSpec::parse(&spec.to_yaml(), "again").unwrap();
        assert_eq!(again, spec);
    }

    fn err(text: &str) -> ParseError {
        WorkflowSpec::parse(text, "wf.yaml").unwrap_err()
    }

    #[test]
    fn unknown_keys_are_named_with_their_location() {
        let e = err("name: wf\nnodes:\n  - id: a\n    task:\n      type: echo\n      retry: 3\n");
        assert_eq!(e.code, codes::UNKNOWN_KEY);
        assert!(e.message.contains("retry") && e.message.contains("nodes[0].task"), "{e}");
        assert_eq!((e.line, e.column), (Some(6), Some(7)), "{e}");
        assert!(e.to_string().starts_with("wf.yaml:6:7: [TERN-E102]"), "{e}");
    }

    #[test]
    fn bad_type_expressions_are_located() {
        let e = err("name: wf\nnodes:\n  - id: a\n    task:\n      type: echo\n      interface:\n        inputs: {x: lst<integer>}\n");
        assert_eq!(e.code, codes::BAD_TYPE_EXPR, "{e}");
        assert!(e.message.contains("lst<integer>") && e.message.contains("valid types"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
    }

    #[test]
    fn other_read_time_checks() {
        let e = err("name: wf\nnodes:\n  - id: 1a\n    task: {type: echo}\n");
        assert_eq!(e.code, codes::BAD_NODE_ID, "{e}");
        let e = err("name: wf\nnodes:\n  - id: inputs\n    task: {type: echo}\n");
        assert_eq!(e.code, codes::BAD_NODE_ID, "{e}");
        let e = err("name: wf\nnodes:\n  - id: a\n    task: {type: echo, sql: x, container: {image: i}}\n");
        assert_eq!(e.code, codes::BAD_TASK, "{e}");
        let e = err("name: wf\nnodes:\n  - id: a\n    task: {type: echo, timeout: 5x}\n");
        assert_eq!(e.code, codes::BAD_DURATION, "{e}");
        let e = err("name: wf\nnodes: [\n");
        assert_eq!(e.code, codes::YAML, "{e}");
        assert!(e.line.is_some(), "{e}");
        let e = err("nodes: []\n");
        assert!(e.message.contains("name"), "{e}");
        let e = err("name: wf\ninputs:\n  x: {type: integer, dflt: 1}\nnodes: []\n");
        assert_eq!(e.code, codes::UNKNOWN_KEY, "{e}");
        assert!(e.message.contains("dflt"), "{e}");
    }
}
