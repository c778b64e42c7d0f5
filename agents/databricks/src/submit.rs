//! The `runs/submit` body: what flytekitplugins-spark 1.16.31's connector submits, in the
//! Jobs API 2.1/2.2 multi-task form, plus an `idempotency_token`.
//!
//! flytekit builds a 2.0-style single-task body (cluster and `spark_python_task` at the
//! top level; only serverless uses `tasks`). The 2.2 API (and minilake) take `tasks`, so the
//! same content is put in one task: the task-level keys of `databricksConf`
//! (`new_cluster`, `existing_cluster_id`, `libraries`, `max_retries`, any `*_task`, …) go
//! into `tasks[0]`, everything else (`run_name`, `timeout_seconds`, `git_source`,
//! `environments`, `access_control_list`, notifications, …) stays on the run.
//!
//! Content, as flytekit: compute from `databricksConf` (classic: `existing_cluster_id` or
//! `new_cluster`, which gets `docker_image = {url: <container image>}`, `spark_conf =
//! sparkConf` and `spark_env_vars = container env + FLYTE_FAIL_ON_ERROR=true` when unset;
//! serverless: `environment_key`/`environments`, the env going to the environment's
//! `spec.environment_vars`), then either `notebook_task` (`notebookPath`,
//! `base_parameters`) or `spark_python_task` (the entrypoint `python_file`, with `source`
//! `GIT` from `git_source` or `WORKSPACE`, and the rendered container args as
//! `parameters`).
use serde_json::{json, Map, Value};
use tern_agent_api::prelude::*;

use crate::codes;
use crate::config::{DatabricksConfig, FileSource, FLYTEKIT_PYTHON_FILE, FLYTEKIT_SERVERLESS_PYTHON_FILE};
use crate::params::{notebook_parameters, python_parameters};
use crate::template::DatabricksTask;

/// The environment variable flytekit adds so the entrypoint fails the run on a task error.
pub const FAIL_ON_ERROR: &str = "FLYTE_FAIL_ON_ERROR";
/// Task keys of the one task (flytekit's names).
pub const PYTHON_TASK_KEY: &str = "flyte_task";
pub const NOTEBOOK_TASK_KEY: &str = "flyte_notebook_task";

/// Keys of a 2.0-style body that belong to the task in the multi-task form.
const TASK_LEVEL_KEYS: &[&str] = &[
    "existing_cluster_id",
    "new_cluster",
    "libraries",
    "compute",
    "environment_variables_key",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
    "disable_auto_optimization",
    "description",
    "run_if",
    "disabled",
];

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
    }
}

/// The body of `POST /api/<v>/jobs/runs/submit` for `task`.
pub fn submit_body(
    task: &DatabricksTask,
    config: &DatabricksConfig,
    inputs: &core::LiteralMap,
    idempotency_token: Option<&str>,
) -> Result<Value, AgentError> {
    let mut run = task.conf.clone();
    if run.contains_key("tasks") {
        return Err(codes::bad_template(
            "databricksConf has `tasks`: the agent builds the run's one task itself; give the compute at the top \
             level (new_cluster, existing_cluster_id, environment_key or environments), as flytekit documents",
        ));
    }
    let has_cluster = run.get("existing_cluster_id").is_some_and(|v| !v.is_null()) || run.get("new_cluster").is_some_and(|v| !v.is_null());
    let has_serverless = truthy(run.get("environment_key")) || truthy(run.get("environments"));
    if !has_cluster && !has_serverless {
        return Err(codes::bad_template(
            "no compute in databricksConf: give one of existing_cluster_id or new_cluster (classic), environment_key \
             or environments (serverless)",
        ));
    }
    let serverless = !has_cluster && has_serverless;
    let mut envs: Map<String, Value> = task.env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    envs.insert(FAIL_ON_ERROR.into(), Value::String("true".into()));

    let mut one = Map::new();
    if serverless {
        let key = configure_serverless(&mut run, &envs)?;
        one.insert("environment_key".into(), Value::String(key));
    } else {
        configure_classic_cluster(&mut run, task, &envs)?;
        // Task-level keys (and any `*_task` the spec carried) go into the task.
        let moved: Vec<String> =
            run.keys().filter(|k| TASK_LEVEL_KEYS.contains(&k.as_str()) || k.ends_with("_task")).cloned().collect();
        for k in moved {
            if let Some(v) = run.remove(&k) {
                one.insert(k, v);
            }
        }
    }

    let user_git_source = run.remove("git_source").filter(|v| !v.is_null());
    let user_python_file = run.remove("python_file").filter(|v| !v.is_null());
    if let Some(path) = &task.notebook_path {
        let mut notebook = Map::new();
        notebook.insert("notebook_path".into(), Value::String(path.clone()));
        let params = notebook_parameters(&task.notebook_base_parameters, inputs)?;
        if !params.is_empty() {
            notebook.insert("base_parameters".into(), Value::Object(params));
        }
        if user_git_source.is_some() {
            notebook.insert("source".into(), Value::String("GIT".into()));
        }
        one.insert("task_key".into(), Value::String(NOTEBOOK_TASK_KEY.into()));
        one.insert("notebook_task".into(), Value::Object(notebook));
        if let Some(git) = user_git_source {
            run.insert("git_source".into(), git);
        }
    } else {
        let mut parameters = python_parameters(&task.args)?;
        let python_file = match user_python_file {
            Some(Value::String(f)) if !f.is_empty() => f,
            Some(other @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => {
                return Err(codes::bad_template(format!("databricksConf.python_file must be a text, got {other}")))
            }
            _ if serverless => config.serverless_python_file.clone().unwrap_or_else(|| FLYTEKIT_SERVERLESS_PYTHON_FILE.into()),
            _ => config.python_file.clone().unwrap_or_else(|| FLYTEKIT_PYTHON_FILE.into()),
        };
        if serverless {
            let provider = task.service_credential_provider.clone().or_else(|| config.service_credential_provider.clone());
            if let Some(p) = provider {
                parameters.push(format!("--flyte-credential-provider={p}"));
            }
        }
        let git_source = match user_git_source {
            Some(git) => Some(git),
            None if config.python_file_source == FileSource::Git => {
                Some(serde_json::to_value(&config.git_source).map_err(|e| codes::bad_template(e.to_string()))?)
            }
            None => None,
        };
        let source = if git_source.is_some() { "GIT" } else { "WORKSPACE" };
        one.insert("task_key".into(), Value::String(PYTHON_TASK_KEY.into()));
        one.insert(
            "spark_python_task".into(),
            json!({"python_file": python_file, "source": source, "parameters": parameters}),
        );
        if let Some(git) = git_source {
            run.insert("git_source".into(), git);
        }
    }
    // Put task_key first for readability of the submitted spec.
    let mut task_obj = Map::new();
    if let Some(k) = one.remove("task_key") {
        task_obj.insert("task_key".into(), k);
    }
    task_obj.extend(one);
    run.insert("tasks".into(), Value::Array(vec![Value::Object(task_obj)]));
    if !truthy(run.get("run_name")) && !task.task_name.is_empty() {
        run.insert("run_name".into(), Value::String(task.task_name.clone()));
    }
    match idempotency_token {
        Some(t) => {
            run.insert("idempotency_token".into(), Value::String(t.to_owned()));
        }
        None => {
            // A token written in the template would make every execution the same run.
            run.remove("idempotency_token");
        }
    }
    Ok(Value::Object(run))
}

/// flytekit's classic compute: an existing cluster is used as is; a new cluster gets the
/// container image, `sparkConf` and the env when it does not set them.
fn configure_classic_cluster(run: &mut Map<String, Value>, task: &DatabricksTask, envs: &Map<String, Value>) -> Result<(), AgentError> {
    if run.get("existing_cluster_id").is_some_and(|v| !v.is_null()) {
        return Ok(());
    }
    let Some(cluster) = run.get_mut("new_cluster") else { return Ok(()) };
    let Value::Object(cluster) = cluster else {
        return Err(codes::bad_template("databricksConf.new_cluster must be an object"));
    };
    if !truthy(cluster.get("docker_image")) {
        cluster.insert("docker_image".into(), json!({"url": task.image}));
    }
    if !truthy(cluster.get("spark_conf")) {
        cluster.insert("spark_conf".into(), Value::Object(task.spark_conf.clone()));
    }
    match cluster.get_mut("spark_env_vars") {
        Some(Value::Object(vars)) if !vars.is_empty() => vars.extend(envs.clone()),
        Some(other) if truthy(Some(other)) => {
            return Err(codes::bad_template("databricksConf.new_cluster.spark_env_vars must be an object"))
        }
        _ => {
            cluster.insert("spark_env_vars".into(), Value::Object(envs.clone()));
        }
    }
    Ok(())
}

/// flytekit's serverless compute: the environment named by `environment_key` (default
/// `default`, created with client "1" when missing) gets the env; returns the key.
fn configure_serverless(run: &mut Map<String, Value>, envs: &Map<String, Value>) -> Result<String, AgentError> {
    let key = match run.remove("environment_key") {
        Some(Value::String(k)) if !k.is_empty() => k,
        None | Some(Value::Null) | Some(Value::String(_)) => "default".to_owned(),
        Some(other) => return Err(codes::bad_template(format!("databricksConf.environment_key must be a text, got {other}"))),
    };
    let environments = run.entry("environments").or_insert_with(|| Value::Array(Vec::new()));
    if environments.is_null() {
        *environments = Value::Array(Vec::new());
    }
    let Value::Array(list) = environments else {
        return Err(codes::bad_template("databricksConf.environments must be a list"));
    };
    if !list.iter().any(|e| e.get("environment_key").and_then(Value::as_str) == Some(key.as_str())) {
        list.push(json!({"environment_key": key, "spec": {"client": "1"}}));
    }
    for env in list.iter_mut() {
        if env.get("environment_key").and_then(Value::as_str) != Some(key.as_str()) {
            continue;
        }
        let Value::Object(env) = env else { continue };
        let spec = env.entry("spec").or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(spec) = spec else {
            return Err(codes::bad_template("databricksConf.environments[].spec must be an object"));
        };
        let vars = spec.entry("environment_vars").or_insert_with(|| Value::Object(Map::new()));
        match vars {
            Value::Object(v) => v.extend(envs.clone()),
            _ => return Err(codes::bad_template("environments[].spec.environment_vars must be an object")),
        }
        break;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(conf: Value) -> DatabricksTask {
        DatabricksTask {
            conf: conf.as_object().unwrap().clone(),
            image: "ghcr.io/me/img:1".into(),
            args: vec!["pyflyte-execute".into(), "--inputs".into(), "s3://b/p/inputs.pb".into()],
            env: vec![("FOO".into(), "bar".into())],
            spark_conf: json!({"spark.driver.memory": "1g"}).as_object().unwrap().clone(),
            task_name: "wf.tasks.sum".into(),
            ..Default::default()
        }
    }

    fn body(t: &DatabricksTask, c: &DatabricksConfig) -> Value {
        submit_body(t, c, &core::LiteralMap::default(), Some("tern-abc")).unwrap()
    }

    #[test]
    fn classic_new_cluster_as_flytekit_in_the_tasks_form() {
        let t = task(json!({"run_name": "r", "timeout_seconds": 60, "max_retries": 1,
            "new_cluster": {"spark_version": "13.3.x", "num_workers": 1}, "libraries": [{"pypi": {"package": "x"}}]}));
        let b = body(&t, &DatabricksConfig::default());
        assert_eq!(b["run_name"], "r");
        assert_eq!(b["timeout_seconds"], 60, "run-level keys stay on the run");
        assert_eq!(b["idempotency_token"], "tern-abc");
        assert_eq!(b["git_source"]["git_commit"], crate::config::FLYTETOOLS_GIT_COMMIT);
        let one = &b["tasks"][0];
        assert_eq!(one["task_key"], PYTHON_TASK_KEY);
        assert_eq!(one["max_retries"], 1);
        assert_eq!(one["libraries"][0]["pypi"]["package"], "x");
        let cluster = &one["new_cluster"];
        assert_eq!(cluster["docker_image"], json!({"url": "ghcr.io/me/img:1"}));
        assert_eq!(cluster["spark_conf"], json!({"spark.driver.memory": "1g"}));
        assert_eq!(cluster["spark_env_vars"], json!({"FOO": "bar", "FLYTE_FAIL_ON_ERROR": "true"}));
        assert_eq!(
            one["spark_python_task"],
            json!({"python_file": FLYTEKIT_PYTHON_FILE, "source": "GIT", "parameters": ["pyflyte-execute", "--inputs", "s3://b/p/inputs.pb"]})
        );
        assert!(b.get("new_cluster").is_none() && b.get("spark_python_task").is_none());
    }

    #[test]
    fn user_settings_win_and_env_is_merged() {
        let t = task(json!({"new_cluster": {"docker_image": {"url": "mine"}, "spark_conf": {"a": "b"},
            "spark_env_vars": {"X": "1", "FOO": "old"}}, "python_file": "/Shared/e.py",
            "git_source": {"git_url": "https://example.com/r", "git_provider": "gitLab", "git_branch": "main"}}));
        let b = body(&t, &DatabricksConfig::default());
        let c = &b["tasks"][0]["new_cluster"];
        assert_eq!(c["docker_image"]["url"], "mine");
        assert_eq!(c["spark_conf"], json!({"a": "b"}));
        assert_eq!(c["spark_env_vars"], json!({"X": "1", "FOO": "bar", "FLYTE_FAIL_ON_ERROR": "true"}));
        assert_eq!(b["tasks"][0]["spark_python_task"]["python_file"], "/Shared/e.py");
        assert_eq!(b["git_source"]["git_provider"], "gitLab");
        assert!(b.get("python_file").is_none());
    }

    #[test]
    fn workspace_entrypoint_from_config() {
        let c = DatabricksConfig {
            python_file: Some("/Shared/tern/entrypoint.py".into()),
            python_file_source: FileSource::Workspace,
            ..Default::default()
        };
        let b = body(&task(json!({"existing_cluster_id": "0101-abc"})), &c);
        assert!(b.get("git_source").is_none());
        assert_eq!(b["tasks"][0]["existing_cluster_id"], "0101-abc");
        assert_eq!(b["tasks"][0]["spark_python_task"]["source"], "WORKSPACE");
        assert_eq!(b["tasks"][0]["spark_python_task"]["python_file"], "/Shared/tern/entrypoint.py");
        assert_eq!(b["run_name"], "wf.tasks.sum", "the task's name when the spec has no run_name");
    }

    #[test]
    fn serverless_environment_gets_the_env() {
        let mut t = task(json!({"environment_key": "e1", "environments": [{"environment_key": "e1", "spec": {"client": "2", "environment_vars": {"K": "v"}}}]}));
        t.service_credential_provider = Some("cred".into());
        let b = body(&t, &DatabricksConfig::default());
        assert!(b.get("environment_key").is_none());
        assert_eq!(b["environments"][0]["spec"]["environment_vars"], json!({"K": "v", "FOO": "bar", "FLYTE_FAIL_ON_ERROR": "true"}));
        let one = &b["tasks"][0];
        assert_eq!(one["environment_key"], "e1");
        assert_eq!(one["spark_python_task"]["python_file"], FLYTEKIT_SERVERLESS_PYTHON_FILE);
        assert_eq!(one["spark_python_task"]["parameters"][3], "--flyte-credential-provider=cred");
        let b = body(&task(json!({"environment_key": "new"})), &DatabricksConfig::default());
        assert_eq!(b["environments"][0], json!({"environment_key": "new", "spec": {"client": "1", "environment_vars": {"FOO": "bar", "FLYTE_FAIL_ON_ERROR": "true"}}}));
    }

    #[test]
    fn notebooks() {
        let mut t = task(json!({"existing_cluster_id": "c", "git_source": {"git_url": "u", "git_provider": "gitHub"}}));
        t.notebook_path = Some("/Users/me/nb".into());
        t.notebook_base_parameters = json!({"a": "1"}).as_object().unwrap().clone();
        let b = body(&t, &DatabricksConfig::default());
        let one = &b["tasks"][0];
        assert_eq!(one["task_key"], NOTEBOOK_TASK_KEY);
        assert_eq!(one["notebook_task"], json!({"notebook_path": "/Users/me/nb", "base_parameters": {"a": "1"}, "source": "GIT"}));
        assert!(one.get("spark_python_task").is_none());
        assert_eq!(b["git_source"]["git_url"], "u");
    }

    #[test]
    fn refusals_and_tokens() {
        for conf in [json!({}), json!({"run_name": "x"}), json!({"tasks": [], "new_cluster": {}}), json!({"new_cluster": 3})] {
            let e = submit_body(&task(conf.clone()), &DatabricksConfig::default(), &core::LiteralMap::default(), None).unwrap_err();
            assert_eq!(e.code, codes::BAD_TEMPLATE, "{conf}");
        }
        let t = task(json!({"existing_cluster_id": "c", "idempotency_token": "static"}));
        let b = submit_body(&t, &DatabricksConfig::default(), &core::LiteralMap::default(), None).unwrap();
        assert!(b.get("idempotency_token").is_none(), "a static token would merge every execution into one run");
        assert_eq!(body(&t, &DatabricksConfig::default())["idempotency_token"], "tern-abc");
    }
}
