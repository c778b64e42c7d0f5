//! What flytekitplugins-dask 1.16.31 serializes, and what the agent makes of it.
//!
//! `custom` is the `DaskJob` proto as camelCase JSON (`MessageToDict`):
//!
//! ```json
//! {"scheduler": {"image": "…", "resources": {}},
//!  "workers": {"numberOfWorkers": 2.0, "image": "…",
//!              "resources": {"requests": [{"name": "CPU", "value": "500m"}],
//!                            "limits": [{"name": "CPU", "value": "2"}, {"name": "MEMORY", "value": "1Gi"}]}}}
//! ```
//!
//! The command is `container.command` followed by `container.args` (flytekit puts
//! `pyflyte-execute …` in `args`), already rendered by the engine (propeller's
//! `{{.input}}`, `{{.outputPrefix}}`, …): a `{{.…}}` left in it is refused. Images are not
//! used (the command runs on the gateway's host); scheduler resources neither.
use serde_json::{Map, Value};
use tern_agent_api::command_result::ContainerCommand;
use tern_agent_api::core;
use tern_type_transformers::structs::struct_to_json;

use crate::codes::{self, bad_template};
use tern_agent_api::prelude::AgentError;

/// The local cluster a task asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSize {
    /// `dask worker --nworkers`.
    pub workers: u32,
    /// `--nthreads`: the worker CPU limit (else request), rounded up; default 1.
    pub threads: u32,
    /// `--memory-limit` in bytes: the worker memory limit (else request); `None` = Dask's `auto`.
    pub memory_bytes: Option<u64>,
}

impl Default for ClusterSize {
    fn default() -> Self {
        Self { workers: 1, threads: 1, memory_bytes: None }
    }
}

/// The parts of a Dask task the agent runs.
#[derive(Debug, Clone)]
pub struct DaskTask {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub size: ClusterSize,
    /// Names of the outputs the interface declares.
    pub outputs: Vec<String>,
}

impl DaskTask {
    pub fn parse(template: &core::TaskTemplate, max_workers: u32) -> Result<Self, AgentError> {
        let (command, _) = ContainerCommand::parse(template, "dask", |m: String| bad_template(m))?;
        let size = match template.custom.as_ref() {
            Some(custom) => cluster_size(&struct_to_json(custom))?,
            None => ClusterSize::default(),
        };
        if size.workers > max_workers {
            return Err(AgentError::invalid_argument(
                codes::TOO_LARGE,
                format!(
                    "the DaskJob asks for {} workers; a local cluster on this gateway has at most {max_workers} (max_workers)",
                    size.workers
                ),
            ));
        }
        Ok(Self { program: command.program, args: command.args, env: command.env, size, outputs: command.outputs })
    }
}

fn cluster_size(custom: &Map<String, Value>) -> Result<ClusterSize, AgentError> {
    let mut size = ClusterSize::default();
    let workers = match custom.get("workers") {
        None | Some(Value::Null) => return Ok(size),
        Some(Value::Object(w)) => w,
        Some(other) => return Err(bad_template(format!("custom.workers must be an object (DaskJob.workers), got {other}"))),
    };
    match workers.get("numberOfWorkers") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(-1.0);
            if v.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&v) {
                return Err(bad_template(format!("custom.workers.numberOfWorkers must be a whole number ≥ 1, got {n}")));
            }
            size.workers = v as u32;
        }
        Some(other) => {
            return Err(bad_template(format!("custom.workers.numberOfWorkers must be a number, got {other}")));
        }
    }
    let resources = match workers.get("resources") {
        None | Some(Value::Null) => return Ok(size),
        Some(Value::Object(r)) => r,
        Some(other) => return Err(bad_template(format!("custom.workers.resources must be an object, got {other}"))),
    };
    let requests = entries(resources, "requests")?;
    let limits = entries(resources, "limits")?;
    let pick = |name: &str| limits.iter().chain(requests.iter()).find(|(n, _)| n == name).map(|(_, v)| v.clone());
    if let Some(cpu) = pick("CPU") {
        let cores = quantity(&cpu).ok_or_else(|| bad_template(format!("custom.workers.resources: CPU {cpu:?} is not a quantity (\"2\", \"500m\")")))?;
        if cores <= 0.0 {
            return Err(bad_template(format!("custom.workers.resources: CPU {cpu:?} must be positive")));
        }
        size.threads = (cores.ceil() as u32).max(1);
    }
    if let Some(mem) = pick("MEMORY") {
        let bytes = quantity(&mem).ok_or_else(|| bad_template(format!("custom.workers.resources: MEMORY {mem:?} is not a quantity (\"1Gi\", \"512M\")")))?;
        if bytes < 1.0 {
            return Err(bad_template(format!("custom.workers.resources: MEMORY {mem:?} must be positive")));
        }
        size.memory_bytes = Some(bytes.ceil() as u64);
    }
    Ok(size)
}

/// `resources.requests`/`limits`: `[{"name": "CPU", "value": "2"}, …]`.
fn entries(resources: &Map<String, Value>, key: &str) -> Result<Vec<(String, String)>, AgentError> {
    let list = match resources.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(bad_template(format!("custom.workers.resources.{key} must be a list, got {other}"))),
    };
    list.iter()
        .map(|e| {
            let name = e.get("name").and_then(Value::as_str);
            let value = e.get("value").and_then(Value::as_str);
            match (name, value) {
                (Some(n), Some(v)) => Ok((n.to_ascii_uppercase(), v.trim().to_owned())),
                // MessageToDict leaves out a default enum value: the name CPU (0).
                (None, Some(v)) => Ok(("CPU".to_owned(), v.trim().to_owned())),
                _ => Err(bad_template(format!("custom.workers.resources.{key}: {e} is not {{\"name\": …, \"value\": …}}"))),
            }
        })
        .collect()
}

/// A Kubernetes quantity (`2`, `500m`, `1.5Gi`, `512M`, `1e3`) as a number.
pub fn quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("m", 1e-3),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| t.strip_suffix(s).filter(|n| !n.is_empty() && !n.ends_with(['e', 'E'])).map(|n| (n, *f)))
        .unwrap_or((t, 1.0));
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::structs::json_to_struct;

    fn template(custom: Option<Value>, args: &[&str]) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "dask".into(),
            custom: custom.map(|c| json_to_struct(c.as_object().unwrap())),
            target: Some(core::task_template::Target::Container(core::Container {
                args: args.iter().map(|a| a.to_string()).collect(),
                env: vec![core::KeyValuePair { key: "A".into(), value: "1".into() }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn sizes_the_cluster_from_what_flytekit_writes() {
        let custom = json!({"scheduler": {"resources": {}}, "workers": {"numberOfWorkers": 2.0, "resources": {
            "requests": [{"name": "CPU", "value": "500m"}],
            "limits": [{"name": "CPU", "value": "2"}, {"name": "MEMORY", "value": "1Gi"}]}}});
        let t = DaskTask::parse(&template(Some(custom), &["pyflyte-execute", "--inputs", "s3://b/in.pb"]), 4).unwrap();
        assert_eq!(t.program, "pyflyte-execute");
        assert_eq!(t.args, ["--inputs", "s3://b/in.pb"]);
        assert_eq!(t.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(t.size, ClusterSize { workers: 2, threads: 2, memory_bytes: Some(1 << 30) });
        let requests_only = json!({"workers": {"numberOfWorkers": 1.0, "resources": {"requests": [{"name": "CPU", "value": "500m"}, {"name": "MEMORY", "value": "512M"}]}}});
        let t = DaskTask::parse(&template(Some(requests_only), &["x"]), 4).unwrap();
        assert_eq!(t.size, ClusterSize { workers: 1, threads: 1, memory_bytes: Some(512_000_000) });
        let default = json!({"scheduler": {"resources": {}}, "workers": {"numberOfWorkers": 1.0, "resources": {}}});
        assert_eq!(DaskTask::parse(&template(Some(default), &["x"]), 4).unwrap().size, ClusterSize::default());
        assert_eq!(DaskTask::parse(&template(None, &["x"]), 4).unwrap().size, ClusterSize::default());
    }

    #[test]
    fn refuses_what_cannot_run() {
        let too_many = json!({"workers": {"numberOfWorkers": 9.0}});
        let e = DaskTask::parse(&template(Some(too_many), &["x"]), 4).unwrap_err();
        assert_eq!(e.code, codes::TOO_LARGE);
        for custom in [
            json!({"workers": {"numberOfWorkers": 1.5}}),
            json!({"workers": {"numberOfWorkers": 0.0}}),
            json!({"workers": {"numberOfWorkers": "2"}}),
            json!({"workers": []}),
            json!({"workers": {"resources": {"limits": [{"name": "MEMORY", "value": "lots"}]}}}),
            json!({"workers": {"resources": {"limits": [{"name": "CPU", "value": "0"}]}}}),
            json!({"workers": {"resources": {"limits": {"CPU": "1"}}}}),
        ] {
            let e = DaskTask::parse(&template(Some(custom.clone()), &["x"]), 4).unwrap_err();
            assert_eq!(e.code, codes::BAD_TEMPLATE, "{custom}");
        }
        let e = DaskTask::parse(&template(None, &["pyflyte-execute", "--inputs", "{{.input}}"]), 4).unwrap_err();
        assert!(e.message.contains("{{.input}}"), "{e}");
        assert!(DaskTask::parse(&template(None, &[]), 4).is_err());
        assert!(DaskTask::parse(&core::TaskTemplate::default(), 4).is_err());
        assert!(DaskTask::parse(&template(None, &["python", "-c", "print('{{x}}')"]), 4).is_ok(), "not a template variable");
    }

    #[test]
    fn kubernetes_quantities() {
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("1.5Gi"), Some(1.5 * 1_073_741_824.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("2E"), Some(2e18));
        assert_eq!(quantity("x"), None);
        assert_eq!(quantity("-1"), None);
        assert_eq!(quantity("Gi"), None);
    }
}
