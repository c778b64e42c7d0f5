//! Reading an AWS Batch task template the way flytekitplugins-awsbatch 1.16.31 writes it.
//!
//! - `type` `aws-batch`; `custom` = `AWSBatchConfig.to_dict()`: `parameters` (map),
//!   `schedulingPriority` (int), `platformCapabilities` (`EC2`/`FARGATE`), `propagateTags`
//!   (bool), `tags` (map) — unset ones are absent or null;
//! - `config` = `{"platformCapabilities": …}` (for the job definition), and propeller's
//!   `dynamic_queue` key when a deployment sets one;
//! - the container: image, env, resources, and args `pyflyte-execute --inputs {{.input}}
//!   --output-prefix {{.outputPrefix}}/0 …`, **rendered** by propeller or `tern run` before
//!   CreateTask;
//! - `metadata.retries` and `metadata.timeout`; `security_context.run_as.iam_role`.
//!
//! Tern extension for map-style work: `custom.arrayProperties.size` (or the `size` of
//! flytekit's `ArrayJob` custom) submits an array job of that many children.
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::struct_to_json;

use crate::codes::bad_template;

/// `custom` keys read by this agent.
pub const READ_KEYS: &[&str] =
    &["parameters", "schedulingPriority", "platformCapabilities", "propagateTags", "tags", "arrayProperties", "size"];

/// What an AWS Batch task asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchTask {
    pub image: String,
    /// `container.command` then `container.args` (Batch has a single command).
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Batch's `VCPU` requirement (`"1"`, `"0.5"`).
    pub vcpus: Option<String>,
    pub memory_mib: Option<u64>,
    pub gpus: Option<u32>,
    pub parameters: BTreeMap<String, String>,
    pub scheduling_priority: Option<i32>,
    /// `EC2` or `FARGATE`.
    pub platform: String,
    pub propagate_tags: Option<bool>,
    pub tags: BTreeMap<String, String>,
    /// Children of an array job (none: a single job).
    pub array_size: Option<i32>,
    /// `config.dynamic_queue` (or `child_queue`), propeller's queue override.
    pub queue: Option<String>,
    /// `security_context.run_as.iam_role`.
    pub iam_role: Option<String>,
    /// `metadata.retries.retries`.
    pub retries: u32,
    /// `metadata.timeout`, in seconds.
    pub timeout_secs: Option<u64>,
    pub task_name: String,
    pub declares_outputs: bool,
}

fn string_map(custom: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, String>, AgentError> {
    match custom.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(bad_template(format!("custom.{key}.{k} must be a string"))),
            })
            .collect(),
        Some(_) => Err(bad_template(format!("custom.{key} must be a map of strings"))),
    }
}

fn int(custom: &Map<String, Value>, key: &str, what: &str) -> Result<Option<i64>, AgentError> {
    match custom.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e12 => Ok(Some(f as i64)),
            _ => Err(bad_template(format!("{what} must be a whole number"))),
        },
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad_template(format!("{what} must be a whole number"))),
        Some(_) => Err(bad_template(format!("{what} must be a whole number"))),
    }
}

/// A Kubernetes CPU quantity (`1`, `0.5`, `500m`) as Batch's vCPU text.
pub fn vcpus(q: &str) -> Result<String, String> {
    let q = q.trim();
    let v: f64 = match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map_err(|_| format!("{q:?} is not a CPU quantity"))? / 1000.0,
        None => q.parse().map_err(|_| format!("{q:?} is not a CPU quantity"))?,
    };
    if !v.is_finite() || v <= 0.0 || v > 4096.0 {
        return Err(format!("{q:?} is not a CPU quantity between 0 and 4096"));
    }
    // Batch takes whole vCPUs on EC2 and 0.25 steps on Fargate: round up to a quarter.
    let quarters = (v * 4.0).ceil() / 4.0;
    Ok(if quarters.fract() == 0.0 { format!("{}", quarters as u64) } else { format!("{quarters}") })
}

/// A Kubernetes memory quantity (`512Mi`, `2Gi`, `1G`, `1000000`) in MiB, rounded up.
pub fn memory_mib(q: &str) -> Result<u64, String> {
    let q = q.trim();
    let units: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, f)| q.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let n: f64 = number.trim().parse().map_err(|_| format!("{q:?} is not a memory quantity"))?;
    let mib = (n * factor / (1024.0 * 1024.0)).ceil();
    if !mib.is_finite() || !(1.0..=1e9).contains(&mib) {
        return Err(format!("{q:?} is not a memory quantity between 1 MiB and 1 PiB"));
    }
    Ok(mib as u64)
}

impl BatchTask {
    pub fn from_template(t: &core::TaskTemplate) -> Result<Self, AgentError> {
        let Some(core::task_template::Target::Container(c)) = &t.target else {
            return Err(bad_template("an aws-batch task needs a container (image and command)"));
        };
        if c.image.trim().is_empty() {
            return Err(bad_template("the container has no image"));
        }
        let command: Vec<String> = c.command.iter().chain(c.args.iter()).cloned().collect();
        if command.is_empty() {
            return Err(bad_template("the container has no command or args"));
        }
        if let Some(arg) = command.iter().find(|a| a.contains("{{.") || a.contains("{{ .")) {
            return Err(bad_template(format!(
                "container args still hold the propeller variable {:?}: CreateTask needs rendered args (propeller and `tern run` render them)",
                arg.chars().take(120).collect::<String>()
            )));
        }
        let custom = t.custom.as_ref().map(struct_to_json).unwrap_or_default();
        let platform = match custom.get("platformCapabilities").or(None) {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => t.config.get("platformCapabilities").cloned().unwrap_or_else(|| "EC2".into()),
            Some(_) => return Err(bad_template("custom.platformCapabilities must be \"EC2\" or \"FARGATE\"")),
        };
        let platform = platform.trim().to_ascii_uppercase();
        if platform != "EC2" && platform != "FARGATE" {
            return Err(bad_template(format!("platformCapabilities {platform:?} is not EC2 or FARGATE")));
        }
        let propagate_tags = match custom.get("propagateTags") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad_template("custom.propagateTags must be true or false")),
        };
        let scheduling_priority = int(&custom, "schedulingPriority", "custom.schedulingPriority")?
            .map(|p| i32::try_from(p).map_err(|_| bad_template("custom.schedulingPriority is out of range")))
            .transpose()?;
        let array_size = match custom.get("arrayProperties") {
            None | Some(Value::Null) => int(&custom, "size", "custom.size")?,
            Some(Value::Object(a)) => int(a, "size", "custom.arrayProperties.size")?,
            Some(_) => return Err(bad_template("custom.arrayProperties must be {\"size\": N}")),
        };
        let array_size = match array_size {
            None | Some(0) | Some(1) => None,
            Some(n) if (2..=10_000).contains(&n) => Some(n as i32),
            Some(n) => return Err(bad_template(format!("array size {n} is outside AWS Batch's 2..=10000"))),
        };
        let mut vcpu = None;
        let mut memory = None;
        let mut gpus = None;
        if let Some(res) = &c.resources {
            // Requests first; a limit fills what is not requested.
            for entry in res.requests.iter().chain(res.limits.iter()) {
                use tern_agent_api::core::resources::ResourceName;
                match ResourceName::try_from(entry.name) {
                    Ok(ResourceName::Cpu) if vcpu.is_none() => {
                        vcpu = Some(vcpus(&entry.value).map_err(|e| bad_template(format!("cpu: {e}")))?)
                    }
                    Ok(ResourceName::Memory) if memory.is_none() => {
                        memory = Some(memory_mib(&entry.value).map_err(|e| bad_template(format!("memory: {e}")))?)
                    }
                    Ok(ResourceName::Gpu) if gpus.is_none() => {
                        let g: u32 = entry.value.trim().parse().map_err(|_| bad_template(format!("gpu {:?} is not a whole number", entry.value)))?;
                        if g > 0 {
                            gpus = Some(g);
                        }
                    }
                    _ => {}
                }
            }
        }
        let queue = ["dynamic_queue", "child_queue"].iter().find_map(|k| t.config.get(*k)).map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        let iam_role = t
            .security_context
            .as_ref()
            .and_then(|s| s.run_as.as_ref())
            .map(|r| r.iam_role.trim().to_owned())
            .filter(|r| !r.is_empty());
        let metadata = t.metadata.as_ref();
        let retries = metadata.and_then(|m| m.retries.as_ref()).map_or(0, |r| r.retries);
        let timeout_secs = metadata.and_then(|m| m.timeout.as_ref()).and_then(|d| u64::try_from(d.seconds).ok()).filter(|s| *s > 0);
        Ok(Self {
            image: c.image.clone(),
            command,
            env: c.env.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            vcpus: vcpu,
            memory_mib: memory,
            gpus,
            parameters: string_map(&custom, "parameters")?,
            scheduling_priority,
            platform,
            propagate_tags,
            tags: string_map(&custom, "tags")?,
            array_size,
            queue,
            iam_role,
            retries,
            timeout_secs,
            task_name: t.id.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
            declares_outputs: t.interface.as_ref().and_then(|i| i.outputs.as_ref()).is_some_and(|o| !o.variables.is_empty()),
        })
    }

    /// The `--inputs` argument of flytekit's entrypoint, if any.
    pub fn inputs_arg(&self) -> Option<&str> {
        self.command.windows(2).find(|w| w[0] == "--inputs").map(|w| w[1].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(custom: Value, args: &[&str]) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "aws-batch".into(),
            custom: Some(tern_type_transformers::render::json_to_struct(custom.as_object().unwrap())),
            config: [("platformCapabilities".to_owned(), "EC2".to_owned())].into_iter().collect(),
            target: Some(core::task_template::Target::Container(core::Container {
                image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                resources: Some(core::Resources {
                    requests: vec![
                        core::resources::ResourceEntry { name: core::resources::ResourceName::Cpu as i32, value: "500m".into() },
                        core::resources::ResourceEntry { name: core::resources::ResourceName::Memory as i32, value: "1Gi".into() },
                    ],
                    limits: vec![core::resources::ResourceEntry { name: core::resources::ResourceName::Cpu as i32, value: "4".into() }],
                }),
                ..Default::default()
            })),
            metadata: Some(core::TaskMetadata {
                retries: Some(core::RetryStrategy { retries: 3 }),
                timeout: Some(prost_types::Duration { seconds: 600, nanos: 0 }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_flytekit_writes() {
        // AWSBatchConfig(parameters={"a": "1"}, schedulingPriority=5, platformCapabilities="EC2", tags={"team": "x"})
        let custom = json!({"parameters": {"a": "1"}, "schedulingPriority": 5.0, "platformCapabilities": "EC2", "tags": {"team": "x"}});
        let t = BatchTask::from_template(&template(custom, &["pyflyte-execute", "--inputs", "s3://b/p/inputs.pb", "--output-prefix", "s3://b/p/0"])).unwrap();
        assert_eq!(t.platform, "EC2");
        assert_eq!(t.scheduling_priority, Some(5));
        assert_eq!(t.parameters.get("a").map(String::as_str), Some("1"));
        assert_eq!(t.tags.get("team").map(String::as_str), Some("x"));
        assert_eq!((t.vcpus.as_deref(), t.memory_mib), (Some("0.5"), Some(1024)), "requests win over limits");
        assert_eq!((t.retries, t.timeout_secs), (3, Some(600)));
        assert_eq!(t.inputs_arg(), Some("s3://b/p/inputs.pb"));
        assert_eq!(t.array_size, None);
        let t = BatchTask::from_template(&template(json!({"arrayProperties": {"size": 3.0}}), &["x"])).unwrap();
        assert_eq!(t.array_size, Some(3));
    }

    #[test]
    fn refuses_what_cannot_run() {
        let bad = [
            template(json!({"tags": "x"}), &["a"]),
            template(json!({"schedulingPriority": 1.5}), &["a"]),
            template(json!({"platformCapabilities": "LAMBDA"}), &["a"]),
            template(json!({"propagateTags": "yes"}), &["a"]),
            template(json!({"arrayProperties": {"size": 20000.0}}), &["a"]),
            template(json!({}), &["pyflyte-execute", "--inputs", "{{.input}}"]),
            template(json!({}), &[]),
            core::TaskTemplate { r#type: "aws-batch".into(), ..Default::default() },
        ];
        for t in bad {
            assert_eq!(BatchTask::from_template(&t).unwrap_err().code, crate::codes::BAD_TEMPLATE, "{t:?}");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(vcpus("1").unwrap(), "1");
        assert_eq!(vcpus("250m").unwrap(), "0.25");
        assert_eq!(vcpus("1.1").unwrap(), "1.25");
        assert!(vcpus("0").is_err() && vcpus("x").is_err() && vcpus("-1").is_err());
        assert_eq!(memory_mib("512Mi").unwrap(), 512);
        assert_eq!(memory_mib("2Gi").unwrap(), 2048);
        assert_eq!(memory_mib("1G").unwrap(), 954);
        assert!(memory_mib("lots").is_err() && memory_mib("0").is_err());
    }
}
