//! What flytekitplugins-dgxc-lepton 1.16.31 writes into the template's `custom`, and the
//! Lepton deployment body built from it.
//!
//! `LeptonEndpointConfig.to_dict()` (plugin `config.py`) gives the deployment task's
//! `custom`; the deletion task's is `{"endpoint_name": …}`. The body follows the plugin
//! connector's `_build_spec` as it reaches the wire through leptonai's pydantic models
//! (`LeptonDeployment`, leptonai 0.27.3 `api/v1/types/deployment.py`, dumped with
//! `exclude_none=True, by_alias=True`): fields those models do not have are dropped
//! (`enable_rdma`, `health_config.readiness`, `liveness.timeout_seconds`,
//! `scale_down.scale_from_zero`), as the SDK drops them.
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tern_agent_api::core;
use tern_type_transformers::structs::struct_to_json;

use crate::codes::bad_template;
use tern_agent_api::prelude::AgentError;

/// The longest name flytekit's connector produces (`_sanitize_endpoint_name`).
pub const MAX_NAME: usize = 36;

/// A deployment task's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The name the user chose (`endpoint_name`), sanitized; `None`: derived from the idempotency key.
    pub name: Option<String>,
    /// `custom`/`vllm`/`sglang`/`nim`.
    pub deployment_type: String,
    /// The user spec (`LeptonDeploymentUserSpec`) as JSON.
    pub spec: Value,
    /// `endpoint_readiness_timeout`, seconds.
    pub readiness_timeout: Option<u64>,
}

/// The `custom` object of a template.
pub fn custom(template: &core::TaskTemplate) -> Result<Map<String, Value>, AgentError> {
    template.custom.as_ref().map(struct_to_json).ok_or_else(|| {
        bad_template("the template has no `custom`: flytekitplugins-dgxc-lepton writes the LeptonEndpointConfig there")
    })
}

fn string(c: &Map<String, Value>, key: &str) -> Result<Option<String>, AgentError> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad_template(format!("custom.{key} must be a string, not {}", kind(other)))),
    }
}

/// A whole number (protobuf `Struct` numbers are doubles: `8080.0`).
fn integer(c: &Map<String, Value>, key: &str) -> Result<Option<i64>, AgentError> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            _ => Err(bad_template(format!("custom.{key} must be a whole number, not {n}"))),
        },
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad_template(format!("custom.{key} {s:?} is not a whole number"))),
        Some(other) => Err(bad_template(format!("custom.{key} must be a whole number, not {}", kind(other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn strings(c: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, AgentError> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad_template(format!("custom.{key} must list strings, not {}", kind(other)))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad_template(format!("custom.{key} must be a list of strings, not {}", kind(other)))),
    }
}

fn object<'a>(c: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Map<String, Value>>, AgentError> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(bad_template(format!("custom.{key} must be an object, not {}", kind(other)))),
    }
}

/// flytekit's `_sanitize_endpoint_name`: lower case, `[^a-z0-9-]` → `-`, `ep-` before a name
/// not starting with a letter, no trailing `-`, at most 36 characters. Past 36, flytekit keeps
/// 33 and appends Python's `hash(name) % 1000`, which changes with every process
/// (`PYTHONHASHSEED`); here the 3 digits come from SHA-256, so the name is stable.
pub fn sanitize_name(name: &str) -> String {
    let mut s: String = name.to_lowercase().chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '-' }).collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = format!("ep-{s}");
    }
    let mut s = s.trim_end_matches('-').to_owned();
    if !s.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        s.push('x');
    }
    if s.chars().count() > MAX_NAME {
        let digest = Sha256::digest(name.as_bytes());
        let n = u16::from_be_bytes([digest[0], digest[1]]) % 1000;
        s = format!("{}{n:03}", &s[..MAX_NAME - 3]);
    }
    s
}

/// The deletion task's endpoint.
pub fn deletion_name(template: &core::TaskTemplate) -> Result<String, AgentError> {
    let c = custom(template)?;
    let name = string(&c, "endpoint_name")?.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        bad_template("a lepton_endpoint_deletion_task needs custom.endpoint_name (the endpoint to delete)")
    })?;
    Ok(sanitize_name(&name))
}

impl Deployment {
    pub fn from_template(template: &core::TaskTemplate) -> Result<Self, AgentError> {
        let c = custom(template)?;
        let deployment_type = string(&c, "deployment_type")?.unwrap_or_else(|| "custom".into());
        if !matches!(deployment_type.as_str(), "custom" | "vllm" | "sglang" | "nim") {
            return Err(bad_template(format!(
                "custom.deployment_type {deployment_type:?} is not one of custom, vllm, sglang, nim"
            )));
        }
        let name = string(&c, "endpoint_name")?.filter(|n| !n.trim().is_empty()).map(|n| sanitize_name(&n));
        let image = string(&c, "image")?.filter(|i| !i.trim().is_empty()).ok_or_else(|| {
            bad_template("custom.image is missing: a Lepton endpoint runs a container image (EndpointEngineConfig.image)")
        })?;
        let port = integer(&c, "port")?.unwrap_or(if deployment_type == "custom" { 8080 } else { 8000 });
        if !(1..=65535).contains(&port) {
            return Err(bad_template(format!("custom.port {port} is not a port (1-65535)")));
        }
        let mut container = json!({"image": image, "ports": [{"container_port": port}]});
        let command = command(&deployment_type, &c, port)?;
        if !command.is_empty() {
            container["command"] = json!(command);
        }
        let spec = json!({
            "container": container,
            "resource_requirement": resource_requirement(&c)?,
            "envs": envs(&deployment_type, &c, port)?,
            "health": health(&c)?,
            "log": {"enable_collection": true},
            "metrics": {},
            "routing_policy": {},
            "user_security_context": {},
        });
        let mut spec = match spec {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(a) = object(&c, "auto_scaler")? {
            spec.insert("auto_scaler".into(), auto_scaler(a));
        }
        if let Some(secrets) = strings(&c, "image_pull_secrets")?.filter(|s| !s.is_empty()) {
            spec.insert("image_pull_secrets".into(), json!(secrets));
        }
        let tokens = api_tokens(&c)?;
        if !tokens.is_empty() {
            spec.insert("api_tokens".into(), Value::Array(tokens));
        }
        let mounts = mounts(&c)?;
        if !mounts.is_empty() {
            spec.insert("mounts".into(), Value::Array(mounts));
        }
        let readiness_timeout = match integer(&c, "endpoint_readiness_timeout")? {
            None => None,
            Some(t) if t > 0 => Some(t as u64),
            Some(t) => return Err(bad_template(format!("custom.endpoint_readiness_timeout {t} must be a positive number of seconds"))),
        };
        Ok(Self { name, deployment_type, spec: Value::Object(spec), readiness_timeout })
    }
}

/// The connector's `_get_deployment_command`.
fn command(deployment_type: &str, c: &Map<String, Value>, port: i64) -> Result<Vec<String>, AgentError> {
    let checkpoint = string(c, "checkpoint_path")?.unwrap_or_else(|| "meta-llama/Llama-3.1-8B-Instruct".into());
    let served = string(c, "served_model_name")?.unwrap_or_else(|| "default-model".into());
    let tp = integer(c, "tensor_parallel_size")?.unwrap_or(1);
    let pp = integer(c, "pipeline_parallel_size")?.unwrap_or(1);
    let dp = integer(c, "data_parallel_size")?.unwrap_or(1);
    let extra: Vec<String> = string(c, "extra_args")?.unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let mut cmd: Vec<String> = match deployment_type {
        "vllm" => vec![
            "vllm".into(),
            "serve".into(),
            checkpoint,
            format!("--tensor-parallel-size={tp}"),
            format!("--pipeline-parallel-size={pp}"),
            format!("--data-parallel-size={dp}"),
            format!("--port={port}"),
            format!("--served-model-name={served}"),
        ],
        "sglang" => vec![
            "python3".into(),
            "-m".into(),
            "sglang.launch_server".into(),
            format!("--model-path={checkpoint}"),
            "--host=0.0.0.0".into(),
            format!("--port={port}"),
            format!("--served-model-name={served}"),
            format!("--tp={tp}"),
            format!("--dp={dp}"),
        ],
        "custom" => {
            return Ok(strings(c, "command")?.unwrap_or_else(|| {
                vec!["/bin/bash".into(), "-c".into(), format!("python3 -m http.server {port} --bind 0.0.0.0")]
            }))
        }
        _ => return Ok(Vec::new()),
    };
    cmd.extend(extra);
    Ok(cmd)
}

fn resource_requirement(c: &Map<String, Value>) -> Result<Value, AgentError> {
    let min = integer(c, "min_replicas")?.unwrap_or(1);
    let max = integer(c, "max_replicas")?.unwrap_or(1);
    if min < 0 || max < min {
        return Err(bad_template(format!("custom.min_replicas {min} / max_replicas {max}: need 0 <= min <= max")));
    }
    let mut r = json!({
        "resource_shape": string(c, "resource_shape")?.unwrap_or_else(|| "cpu.small".into()).to_lowercase(),
        "min_replicas": min,
        "max_replicas": max,
    });
    if let Some(group) = string(c, "node_group")?.filter(|g| !g.is_empty()) {
        r["affinity"] = json!({"allowed_dedicated_node_groups": [group]});
    }
    Ok(r)
}

fn envs(deployment_type: &str, c: &Map<String, Value>, port: i64) -> Result<Vec<Value>, AgentError> {
    let mut envs = Vec::new();
    let served = string(c, "served_model_name")?;
    if let Some(s) = &served {
        envs.push(json!({"name": "SERVED_MODEL_NAME", "value": s}));
    }
    if c.get("port").is_some_and(|p| !p.is_null()) {
        envs.push(json!({"name": "MODEL_PORT", "value": port.to_string()}));
    }
    let llm = matches!(deployment_type, "vllm" | "sglang");
    if llm {
        if let Some(p) = string(c, "checkpoint_path")? {
            envs.push(json!({"name": "MODEL_PATH", "value": p}));
        }
        let tp = integer(c, "tensor_parallel_size")?.unwrap_or(1);
        envs.push(json!({"name": "TENSOR_PARALLEL_SIZE", "value": tp.to_string()}));
    }
    if deployment_type == "nim" {
        if let Some(s) = &served {
            envs.push(json!({"name": "NIM_MODEL_NAME", "value": s}));
        }
    }
    if let Some(vars) = object(c, "env_vars")? {
        for (name, value) in vars {
            match value {
                Value::Object(o) => match o.get("value_from").and_then(|v| v.get("secret_name_ref")).and_then(Value::as_str) {
                    Some(secret) => envs.push(json!({"name": name, "value_from": {"secret_name_ref": secret}})),
                    None => {
                        return Err(bad_template(format!(
                            "custom.env_vars.{name} is an object but not {{\"value_from\": {{\"secret_name_ref\": …}}}}"
                        )))
                    }
                },
                Value::String(s) => envs.push(json!({"name": name, "value": s})),
                Value::Number(n) => envs.push(json!({"name": name, "value": n.to_string()})),
                Value::Bool(b) => envs.push(json!({"name": name, "value": if *b { "True" } else { "False" }})),
                other => return Err(bad_template(format!("custom.env_vars.{name} must be a string, not {}", kind(other)))),
            }
        }
    }
    Ok(envs)
}

/// `health_config` → leptonai's `HealthCheck` (only `liveness.initial_delay_seconds` exists there).
fn health(c: &Map<String, Value>) -> Result<Value, AgentError> {
    let Some(h) = object(c, "health_config")? else { return Ok(json!({})) };
    let delay = h.get("liveness").and_then(Value::as_object).map(|l| integer(l, "initial_delay_seconds")).transpose()?.flatten();
    Ok(match delay {
        Some(d) => json!({"liveness": {"initial_delay_seconds": d}}),
        None => json!({}),
    })
}

/// `auto_scaler` → leptonai's `AutoScaler` fields.
fn auto_scaler(a: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(sd)) = a.get("scale_down") {
        let mut scale_down = Map::new();
        for key in ["no_traffic_timeout", "not_ready_timeout"] {
            if let Some(v) = sd.get(key).and_then(Value::as_f64) {
                scale_down.insert(key.into(), json!(v as i64));
            }
        }
        out.insert("scale_down".into(), Value::Object(scale_down));
    }
    if let Some(v) = a.get("target_gpu_utilization_percentage").and_then(Value::as_f64) {
        out.insert("target_gpu_utilization_percentage".into(), json!(v as i64));
    }
    if let Some(Value::Object(t)) = a.get("target_throughput") {
        let mut tt = Map::new();
        for key in ["qpm", "paths", "methods"] {
            if let Some(v) = t.get(key) {
                tt.insert(key.into(), v.clone());
            }
        }
        out.insert("target_throughput".into(), Value::Object(tt));
    }
    Value::Object(out)
}

/// `api_tokens` → leptonai's `TokenVar`s: `{"value": …}`, or a workspace secret as
/// `{"value_from": {"token_name_ref": …}}` (the plugin writes `secret_name_ref`, which
/// leptonai's `TokenValue` does not accept).
fn api_tokens(c: &Map<String, Value>) -> Result<Vec<Value>, AgentError> {
    let Some(tokens) = c.get("api_tokens").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Value::Array(tokens) = tokens else {
        return Err(bad_template(format!("custom.api_tokens must be a list, not {}", kind(tokens))));
    };
    tokens
        .iter()
        .map(|t| {
            if let Some(v) = t.get("value").and_then(Value::as_str) {
                return Ok(json!({"value": v}));
            }
            let from = t.get("value_from");
            match from.and_then(|f| f.get("token_name_ref").or_else(|| f.get("secret_name_ref"))).and_then(Value::as_str) {
                Some(name) => Ok(json!({"value_from": {"token_name_ref": name}})),
                None => Err(bad_template("custom.api_tokens: each token is {\"value\": …} or {\"value_from\": {\"secret_name_ref\": …}}")),
            }
        })
        .collect()
}

/// `mounts` (`MountReader.node_nfs`) → leptonai's `Mount`s; disabled ones are left out.
fn mounts(c: &Map<String, Value>) -> Result<Vec<Value>, AgentError> {
    let list = match c.get("mounts") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(l)) => l,
        Some(Value::Object(o)) => match o.get("mounts") {
            Some(Value::Array(l)) => l,
            _ => return Ok(Vec::new()),
        },
        Some(other) => return Err(bad_template(format!("custom.mounts must be a list, not {}", kind(other)))),
    };
    let mut out = Vec::new();
    for m in list {
        let Value::Object(m) = m else { return Err(bad_template("custom.mounts: each mount is an object")) };
        if m.get("enabled").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let (Some(path), Some(mount_path)) = (string(m, "cache_path")?, string(m, "mount_path")?) else {
            return Err(bad_template("custom.mounts: each mount needs cache_path and mount_path"));
        };
        let from = string(m, "storage_source")?.unwrap_or_else(|| "node-nfs:lepton-shared-fs".into());
        let options = m.get("mount_options").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        out.push(json!({"path": path, "from": from, "mount_path": mount_path, "mount_options": options}));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::structs::json_to_struct;

    fn template(custom: Value) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "lepton_endpoint_deployment_task".into(),
            custom: Some(json_to_struct(custom.as_object().unwrap())),
            ..Default::default()
        }
    }

    /// `LeptonEndpointConfig(...).to_dict()` of flytekitplugins-dgxc-lepton 1.16.31 for a vLLM
    /// endpoint with every option set, as it arrives (numbers as doubles).
    fn vllm_custom() -> Value {
        json!({
            "deployment_type": "vllm", "endpoint_name": "My_LLM.Endpoint", "resource_shape": "GPU.1xH100",
            "node_group": "ng-1", "operation": "deploy", "image": "vllm/vllm-openai:latest", "port": 8000.0,
            "checkpoint_path": "meta-llama/Llama-3.1-8B-Instruct", "served_model_name": "llama",
            "tensor_parallel_size": 2.0, "data_parallel_size": 1.0, "extra_args": "--max-model-len 4096",
            "pipeline_parallel_size": 1.0,
            "env_vars": {"HF_HOME": "/cache", "HF_TOKEN": {"value_from": {"secret_name_ref": "hf-token"}}},
            "mounts": [
                {"enabled": true, "cache_path": "/shared/models", "mount_path": "/models", "storage_source": "node-nfs:lepton-shared-fs"},
                {"enabled": false, "cache_path": "/x", "mount_path": "/y", "storage_source": "node-nfs:lepton-shared-fs"}
            ],
            "api_tokens": [{"value_from": {"secret_name_ref": "ep-token"}}],
            "auto_scaler": {"scale_down": {"no_traffic_timeout": 3600.0, "scale_from_zero": false},
                            "target_gpu_utilization_percentage": 0.0, "target_throughput": {"qpm": 0.0, "paths": [], "methods": []}},
            "min_replicas": 1.0, "max_replicas": 3.0,
            "health_config": {"enable_collection": true, "liveness": {"initial_delay_seconds": 600.0, "timeout_seconds": 30.0},
                              "readiness": {"initial_delay_seconds": 60.0}},
            "image_pull_secrets": ["ngc"], "endpoint_readiness_timeout": 1800.0
        })
    }

    #[test]
    fn a_vllm_endpoint_becomes_leptonais_deployment_spec() {
        let d = Deployment::from_template(&template(vllm_custom())).unwrap();
        assert_eq!(d.name.as_deref(), Some("my-llm-endpoint"));
        assert_eq!(d.readiness_timeout, Some(1800));
        assert_eq!(
            d.spec,
            json!({
                "container": {"image": "vllm/vllm-openai:latest", "ports": [{"container_port": 8000}],
                    "command": ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size=2",
                        "--pipeline-parallel-size=1", "--data-parallel-size=1", "--port=8000", "--served-model-name=llama",
                        "--max-model-len", "4096"]},
                "resource_requirement": {"resource_shape": "gpu.1xh100", "min_replicas": 1, "max_replicas": 3,
                    "affinity": {"allowed_dedicated_node_groups": ["ng-1"]}},
                "envs": [
                    {"name": "SERVED_MODEL_NAME", "value": "llama"}, {"name": "MODEL_PORT", "value": "8000"},
                    {"name": "MODEL_PATH", "value": "meta-llama/Llama-3.1-8B-Instruct"}, {"name": "TENSOR_PARALLEL_SIZE", "value": "2"},
                    {"name": "HF_HOME", "value": "/cache"}, {"name": "HF_TOKEN", "value_from": {"secret_name_ref": "hf-token"}}
                ],
                "health": {"liveness": {"initial_delay_seconds": 600}},
                "log": {"enable_collection": true}, "metrics": {}, "routing_policy": {}, "user_security_context": {},
                "auto_scaler": {"scale_down": {"no_traffic_timeout": 3600}, "target_gpu_utilization_percentage": 0,
                    "target_throughput": {"qpm": 0.0, "paths": [], "methods": []}},
                "image_pull_secrets": ["ngc"],
                "api_tokens": [{"value_from": {"token_name_ref": "ep-token"}}],
                "mounts": [{"path": "/shared/models", "from": "node-nfs:lepton-shared-fs", "mount_path": "/models", "mount_options": {}}]
            })
        );
    }

    #[test]
    fn a_custom_endpoint_gets_flytekits_default_command_and_port() {
        let d = Deployment::from_template(&template(json!({"deployment_type": "custom", "image": "python:3.11-slim",
            "resource_shape": "cpu.small", "node_group": "ng", "endpoint_name": "web"})))
        .unwrap();
        assert_eq!(d.spec["container"]["ports"], json!([{"container_port": 8080}]));
        assert_eq!(d.spec["container"]["command"], json!(["/bin/bash", "-c", "python3 -m http.server 8080 --bind 0.0.0.0"]));
        assert_eq!(d.spec["envs"], json!([]));
        let nim = Deployment::from_template(&template(json!({"deployment_type": "nim", "image": "nvcr.io/nim/x", "port": 8000.0}))).unwrap();
        assert!(nim.spec["container"].get("command").is_none());
        assert_eq!(nim.name, None);
    }

    #[test]
    fn bad_templates_are_user_errors() {
        let bad = [
            json!({"deployment_type": "triton", "image": "x"}),
            json!({"deployment_type": "custom"}),
            json!({"image": "x", "port": 70000.0}),
            json!({"image": "x", "port": "eighty"}),
            json!({"image": "x", "env_vars": {"A": {"nope": 1.0}}}),
            json!({"image": "x", "api_tokens": [{"x": 1.0}]}),
            json!({"image": "x", "min_replicas": 3.0, "max_replicas": 1.0}),
            json!({"image": "x", "endpoint_readiness_timeout": -1.0}),
            json!({"image": "x", "mounts": [{"cache_path": "/a"}]}),
            json!({"image": ["x"]}),
        ];
        for c in bad {
            let e = Deployment::from_template(&template(c.clone())).unwrap_err();
            assert_eq!(e.code, crate::codes::BAD_TEMPLATE, "{c}");
            assert!(!e.is_retryable());
        }
        let none = core::TaskTemplate::default();
        assert_eq!(Deployment::from_template(&none).unwrap_err().code, crate::codes::BAD_TEMPLATE);
        assert_eq!(deletion_name(&template(json!({}))).unwrap_err().code, crate::codes::BAD_TEMPLATE);
        assert_eq!(deletion_name(&template(json!({"endpoint_name": "My EP"}))).unwrap(), "my-ep");
    }

    #[test]
    fn names_are_sanitized_like_flytekits_but_stably_truncated() {
        assert_eq!(sanitize_name("My_Endpoint"), "my-endpoint");
        assert_eq!(sanitize_name("1abc"), "ep-1abc");
        assert_eq!(sanitize_name("abc--"), "abc");
        assert_eq!(sanitize_name("é"), "ep");
        let long = "a-very-long-endpoint-name-that-goes-past-the-limit";
        let s = sanitize_name(long);
        assert_eq!(s.len(), MAX_NAME);
        assert!(s.starts_with("a-very-long-endpoint-name-that-go"));
        assert_eq!(s, sanitize_name(long), "stable");
        assert!(s[33..].chars().all(|c| c.is_ascii_digit()));
    }
}
