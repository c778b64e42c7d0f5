//! Reading a Ray task template the way flytekitplugins-ray 1.16.31 writes it, and the
//! Ray Jobs API submission made of it.
//!
//! `custom` is the `RayJob` proto as camelCase JSON (`MessageToDict`):
//!
//! | key | use |
//! |---|---|
//! | `runtimeEnvYaml` | the job's `runtime_env` (YAML of `RayJobConfig(runtime_env=…)`) |
//! | `runtimeEnv` | the same as base64 JSON (deprecated; read when `runtimeEnvYaml` is absent) |
//! | `rayCluster` | ignored: the cluster already exists (head/worker groups, autoscaling) |
//! | `shutdownAfterJobFinishes`, `ttlSecondsAfterFinished` | ignored: the cluster is not the job's |
//!
//! The container gives the entrypoint (`command` + rendered `args`, shell-quoted: Ray runs
//! it with a shell) and the environment (`container.env` joins `runtime_env.env_vars`, with
//! `FLYTE_FAIL_ON_ERROR=true` so that a task that raises fails the job).
//! `container.image` and `container.resources` are not used: the cluster's nodes run the
//! job with their own image and resources (`entrypoint_num_cpus` etc. come from the section).
use base64::Engine as _;
use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::structs::struct_to_json;

use crate::codes;
use crate::config::RayConfig;

/// `custom` keys that describe a KubeRay cluster to create, which do not apply to an
/// existing cluster: read past (logged), never refused.
pub const CLUSTER_KEYS: &[&str] = &["rayCluster", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished"];

/// Set in every job's `env_vars`: `pyflyte-execute` exits non-zero when the task raises.
pub const FAIL_ON_ERROR: &str = "FLYTE_FAIL_ON_ERROR";

/// What a Ray task asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RayTask {
    /// The shell command Ray runs: `container.command` + `container.args`, quoted.
    pub entrypoint: String,
    /// The task's `runtime_env` (`runtimeEnvYaml`, else `runtimeEnv`), an object.
    pub runtime_env: Map<String, Value>,
    /// `container.env`, in order.
    pub env: Vec<(String, String)>,
    /// The template's identifier name.
    pub task_name: String,
    /// The interface declares outputs (the task must write `<output_prefix>/outputs.pb`).
    pub declares_outputs: bool,
    /// Cluster keys the template carries (ignored).
    pub ignored: Vec<String>,
}

impl RayTask {
    pub fn from_template(template: &core::TaskTemplate) -> Result<Self, AgentError> {
        let custom = template.custom.as_ref().map(struct_to_json).unwrap_or_default();
        let container = match &template.target {
            Some(core::task_template::Target::Container(c)) => c,
            _ => return Err(codes::bad_template("the task has no container: its command and args are the Ray job's entrypoint")),
        };
        let words: Vec<&String> = container.command.iter().chain(container.args.iter()).collect();
        if words.iter().all(|w| w.trim().is_empty()) {
            return Err(codes::bad_template("the container has neither command nor args: nothing for the Ray job to run"));
        }
        for w in &words {
            if let Some(start) = w.find("{{.") {
                let var: String = w[start..].chars().take_while(|c| *c != '}').take(60).collect();
                return Err(codes::bad_template(format!(
                    "container arg {var}}}}} is a propeller template variable nobody rendered: the caller (propeller, \
                     `tern run`) renders them before CreateTask"
                )));
            }
        }
        let runtime_env = runtime_env(&custom)?;
        let declares_outputs =
            template.interface.as_ref().and_then(|i| i.outputs.as_ref()).is_some_and(|o| !o.variables.is_empty());
        Ok(Self {
            entrypoint: words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" "),
            runtime_env,
            env: container.env.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            task_name: template.id.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
            declares_outputs,
            ignored: CLUSTER_KEYS.iter().filter(|k| custom.get(**k).is_some_and(|v| !v.is_null())).map(|k| k.to_string()).collect(),
        })
    }

    /// The body of `POST /api/jobs/`.
    pub fn submission(&self, config: &RayConfig, submission_id: Option<&str>, metadata: Map<String, Value>) -> Result<Value, AgentError> {
        let mut env = self.runtime_env.clone();
        // env_vars: the section's, then the container's, then the task's runtime_env's.
        let mut vars = Map::new();
        if let Some(Value::Object(o)) = config.runtime_env.get("env_vars") {
            vars.extend(o.clone());
        }
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));
        // flytekit's entrypoint writes a task's exception to error.pb and exits 0 unless told to fail (as
        // flytekit's Databricks connector tells it): the job then FAILS instead of passing as a success.
        vars.insert(FAIL_ON_ERROR.into(), Value::String("true".into()));
        match env.remove("env_vars") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                if let Some((k, v)) = o.iter().find(|(_, v)| !v.is_string()) {
                    return Err(codes::bad_template(format!("runtime_env.env_vars.{k} must be a text, got {v}")));
                }
                vars.extend(o);
            }
            Some(other) => return Err(codes::bad_template(format!("runtime_env.env_vars must be a mapping, got {other}"))),
        }
        for (k, v) in &config.runtime_env {
            if k != "env_vars" && !env.contains_key(k) {
                env.insert(k.clone(), v.clone());
            }
        }
        if !vars.is_empty() {
            env.insert("env_vars".into(), Value::Object(vars));
        }
        if let Some(path) = local_paths(&env).first() {
            return Err(codes::bad_template(format!(
                "runtime_env names the local path {path:?}: Ray's Jobs API takes working_dir and py_modules as URIs \
                 (s3://, gs://, https://….zip) — the gateway uploads nothing; package the code in the cluster's image \
                 or ship it as a remote archive"
            )));
        }
        let mut body = Map::new();
        body.insert("entrypoint".into(), Value::String(self.entrypoint.clone()));
        if let Some(id) = submission_id {
            body.insert("submission_id".into(), Value::String(id.to_owned()));
        }
        if !env.is_empty() {
            body.insert("runtime_env".into(), Value::Object(env));
        }
        if !metadata.is_empty() {
            body.insert("metadata".into(), Value::Object(metadata));
        }
        if let Some(n) = config.entrypoint_num_cpus {
            body.insert("entrypoint_num_cpus".into(), n.into());
        }
        if let Some(n) = config.entrypoint_num_gpus {
            body.insert("entrypoint_num_gpus".into(), n.into());
        }
        if let Some(n) = config.entrypoint_memory {
            body.insert("entrypoint_memory".into(), n.into());
        }
        if !config.entrypoint_resources.is_empty() {
            let r: Map<String, Value> = config.entrypoint_resources.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
            body.insert("entrypoint_resources".into(), Value::Object(r));
        }
        Ok(Value::Object(body))
    }
}

/// The task's runtime env: `runtimeEnvYaml` when present, else the base64 JSON of
/// `runtimeEnv`; none is an empty object.
fn runtime_env(custom: &Map<String, Value>) -> Result<Map<String, Value>, AgentError> {
    let text = |key: &str| match custom.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(codes::bad_template(format!("{key} must be a text, got {other}"))),
    };
    let parsed: Value = if let Some(yaml) = text("runtimeEnvYaml")? {
        serde_yaml::from_str(&yaml).map_err(|e| codes::bad_template(format!("runtimeEnvYaml is not YAML: {e}")))?
    } else if let Some(b64) = text("runtimeEnv")? {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| codes::bad_template(format!("runtimeEnv is not base64 (flytekit writes base64 JSON): {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| codes::bad_template(format!("runtimeEnv is not base64 JSON: {e}")))?
    } else {
        return Ok(Map::new());
    };
    match parsed {
        Value::Object(o) => Ok(o),
        Value::Null => Ok(Map::new()),
        other => Err(codes::bad_template(format!("the runtime env must be a mapping (runtime_env={{...}}), got {other}"))),
    }
}

/// The `working_dir` and `py_modules` entries of `runtime_env` that are local paths, not URIs
/// (Ray refuses them over REST, as a supervisor start failure that looks like the cluster's fault).
pub fn local_paths(runtime_env: &Map<String, Value>) -> Vec<String> {
    let mut uris: Vec<&Value> = runtime_env.get("working_dir").into_iter().collect();
    if let Some(Value::Array(modules)) = runtime_env.get("py_modules") {
        uris.extend(modules);
    }
    uris.into_iter().filter_map(Value::as_str).filter(|u| !u.contains("://")).map(str::to_owned).collect()
}

/// `word` as one POSIX shell word.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::structs::json_to_struct;

    fn template(custom: Value, args: &[&str]) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "ray".into(),
            custom: custom.as_object().map(json_to_struct),
            target: Some(core::task_template::Target::Container(core::Container {
                image: "ghcr.io/x/y:1".into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                env: vec![core::KeyValuePair { key: "A".into(), value: "container".into() }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_flytekit_writes() {
        let env = json!({"pip": ["numpy"], "env_vars": {"B": "2", "A": "runtime"}, "working_dir": "s3://b/app.zip"});
        let b64 = base64::engine::general_purpose::STANDARD.encode(env.to_string());
        let yaml = "env_vars:\n  A: runtime\n  B: '2'\npip:\n- numpy\nworking_dir: s3://b/app.zip\n";
        let t = template(
            json!({"rayCluster": {"headGroupSpec": {"rayStartParams": {"num-cpus": "1"}}, "workerGroupSpec": [{"groupName": "g", "replicas": 1.0}]},
                   "runtimeEnv": b64, "runtimeEnvYaml": yaml, "shutdownAfterJobFinishes": true, "ttlSecondsAfterFinished": 3600.0}),
            &["pyflyte-execute", "--inputs", "/data/in puts.pb", "--", "task-name", "it's"],
        );
        let r = RayTask::from_template(&t).unwrap();
        assert_eq!(r.entrypoint, "pyflyte-execute --inputs '/data/in puts.pb' -- task-name 'it'\\''s'");
        assert_eq!(Value::Object(r.runtime_env.clone()), env);
        assert_eq!(r.ignored, ["rayCluster", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished"]);
        // Only the deprecated base64 form: the same runtime env.
        let t = template(json!({"runtimeEnv": b64}), &["python", "x.py"]);
        assert_eq!(Value::Object(RayTask::from_template(&t).unwrap().runtime_env), env);
        // No custom at all: a plain container task.
        let mut t = template(json!({}), &["python", "x.py"]);
        t.custom = None;
        assert!(RayTask::from_template(&t).unwrap().runtime_env.is_empty());
    }

    #[test]
    fn submission_merges_env_and_section_defaults() {
        let t = template(json!({"runtimeEnvYaml": "env_vars:\n  A: runtime\nworking_dir: s3://task/app.zip\n"}), &["python", "-c", "print(1)"]);
        let r = RayTask::from_template(&t).unwrap();
        let config = RayConfig {
            runtime_env: [
                ("env_vars".to_owned(), json!({"A": "section", "S": "1"})),
                ("working_dir".to_owned(), json!("s3://section/app.zip")),
                ("py_executable".to_owned(), json!("/opt/py")),
            ]
            .into(),
            entrypoint_num_cpus: Some(0.5),
            entrypoint_resources: [("accel".to_owned(), 1.0)].into(),
            ..Default::default()
        };
        let meta = json!({"tern.task": "t"}).as_object().unwrap().clone();
        let b = r.submission(&config, Some("tern-abc"), meta).unwrap();
        assert_eq!(b["entrypoint"], "python -c 'print(1)'");
        assert_eq!(b["submission_id"], "tern-abc");
        assert_eq!(
            b["runtime_env"]["env_vars"],
            json!({"A": "runtime", "S": "1", "FLYTE_FAIL_ON_ERROR": "true"}),
            "the task's runtime_env wins, then the container"
        );
        assert_eq!(b["runtime_env"]["working_dir"], "s3://task/app.zip");
        assert_eq!(b["runtime_env"]["py_executable"], "/opt/py");
        assert_eq!(b["metadata"]["tern.task"], "t");
        assert_eq!(b["entrypoint_num_cpus"], 0.5);
        assert_eq!(b["entrypoint_resources"], json!({"accel": 1.0}));
        assert!(b.get("entrypoint_num_gpus").is_none());
        let plain = RayTask::from_template(&template(json!({}), &["true"])).unwrap();
        let b = plain.submission(&RayConfig::default(), None, Map::new()).unwrap();
        assert_eq!(b, json!({"entrypoint": "true", "runtime_env": {"env_vars": {"A": "container", "FLYTE_FAIL_ON_ERROR": "true"}}}));
    }

    #[test]
    fn refuses_templates_that_cannot_run() {
        let bad = [
            template(json!({}), &[]),
            template(json!({}), &["pyflyte-execute", "--inputs", "{{.input}}"]),
            template(json!({"runtimeEnvYaml": "[1, 2"}), &["x"]),
            template(json!({"runtimeEnvYaml": "- a\n- b\n"}), &["x"]),
            template(json!({"runtimeEnv": "%%%"}), &["x"]),
            template(json!({"runtimeEnv": base64::engine::general_purpose::STANDARD.encode("not json")}), &["x"]),
            template(json!({"runtimeEnvYaml": 3}), &["x"]),
        ];
        for t in bad {
            let e = RayTask::from_template(&t).unwrap_err();
            assert_eq!(e.code, codes::BAD_TEMPLATE, "{t:?}");
            assert!(!e.is_retryable());
        }
        let mut t = template(json!({}), &["x"]);
        t.target = None;
        assert_eq!(RayTask::from_template(&t).unwrap_err().code, codes::BAD_TEMPLATE);
        for yaml in ["env_vars:\n  N: 3\n", "working_dir: /home/me/app\n", "py_modules: [s3://b/m.zip, ./lib]\n"] {
            let r = RayTask::from_template(&template(json!({ "runtimeEnvYaml": yaml }), &["x"])).unwrap();
            assert_eq!(r.submission(&RayConfig::default(), None, Map::new()).unwrap_err().code, codes::BAD_TEMPLATE, "{yaml}");
        }
        let r = RayTask::from_template(&template(json!({"runtimeEnvYaml": "py_modules: [s3://b/m.zip]\nworking_dir: gcs://x.zip\n"}), &["x"])).unwrap();
        assert!(r.submission(&RayConfig::default(), None, Map::new()).is_ok(), "remote URIs pass");
    }

    #[test]
    fn quoting() {
        for (w, q) in [("a", "a"), ("", "''"), ("a b", "'a b'"), ("$HOME", "'$HOME'"), ("s3://b/k.pb", "s3://b/k.pb"), ("x'y", r"'x'\''y'")] {
            assert_eq!(shell_quote(w), q);
        }
    }
}
