//! Reading a Spark task template the way flytekitplugins-spark 1.16.31 writes it.
//!
//! `custom` is the `SparkJob` proto as camelCase JSON (`MessageToDict`, so defaults are
//! omitted: no `applicationType` means `PYTHON`):
//!
//! | key | use |
//! |---|---|
//! | `mainApplicationFile` | the application: flytekit writes `local://<path of flytekit/bin/entrypoint.py>` (or the image's `local:///usr/local/bin/entrypoint.py`); `local://`/`file:` paths are files on the nodes |
//! | `applicationType` | `PYTHON` (default), `JAVA`, `SCALA`; `R` is refused |
//! | `mainClass` | the JVM main class (`JAVA`/`SCALA`) |
//! | `executorPath` | the Python of driver and executors (`PYSPARK_PYTHON`) |
//! | `sparkConf` | Spark properties |
//! | `hadoopConf` | Hadoop properties, as `spark.hadoop.<key>` |
//! | `databricksConf`, `databricksInstance`, `driverPod`, `executorPod` | ignored (Databricks / Kubernetes fields) |
//!
//! The application's arguments are the **rendered** `container.args` (`pyflyte-execute --inputs
//! … --output-prefix … -- task-module … task-name …`), which flytekit's entrypoint runs;
//! `container.env` becomes the driver's and executors' environment.
use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::struct_to_json;

use crate::codes;

/// `SparkJob.applicationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppType {
    #[default]
    Python,
    Java,
    Scala,
}

/// What a Spark task asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparkTask {
    pub app_type: AppType,
    /// `mainApplicationFile` as a local path (`local://`/`file:` removed) or a URL Spark fetches.
    pub app_file: String,
    pub main_class: Option<String>,
    pub executor_path: Option<String>,
    /// `sparkConf` then `hadoopConf` as `spark.hadoop.*`, values as text.
    pub properties: Vec<(String, String)>,
    /// `container.args`, already rendered.
    pub args: Vec<String>,
    /// `container.env`, in order.
    pub env: Vec<(String, String)>,
}

impl SparkTask {
    pub fn from_template(template: &core::TaskTemplate) -> Result<Self, AgentError> {
        let custom = template
            .custom
            .as_ref()
            .map(struct_to_json)
            .ok_or_else(|| codes::bad_template("the task has no custom config (flytekit writes the SparkJob there: mainApplicationFile, sparkConf, …)"))?;
        let app_type = match custom.get("applicationType") {
            None | Some(Value::Null) => AppType::Python,
            Some(Value::String(s)) => match s.as_str() {
                "PYTHON" | "" => AppType::Python,
                "JAVA" => AppType::Java,
                "SCALA" => AppType::Scala,
                "R" => return Err(codes::bad_template("applicationType R is not supported (PYTHON, JAVA and SCALA are)")),
                other => return Err(codes::bad_template(format!("applicationType {:?} is not PYTHON, JAVA or SCALA", short(other)))),
            },
            Some(Value::Number(n)) => match n.as_f64().map(|f| f as i64) {
                Some(0) => AppType::Python,
                Some(1) => AppType::Java,
                Some(2) => AppType::Scala,
                _ => return Err(codes::bad_template(format!("applicationType {n} is not PYTHON, JAVA or SCALA"))),
            },
            Some(other) => return Err(codes::bad_template(format!("applicationType must be a text, got {other}"))),
        };
        let app_file = text(&custom, "mainApplicationFile")?
            .ok_or_else(|| codes::bad_template("custom has no mainApplicationFile (flytekit writes its entrypoint.py there)"))?;
        let app_file = local_path(&app_file);
        let main_class = text(&custom, "mainClass")?;
        if matches!(app_type, AppType::Java | AppType::Scala) && main_class.is_none() {
            return Err(codes::bad_template("a JAVA or SCALA application needs mainClass"));
        }
        let mut properties = Vec::new();
        for (k, v) in object(&custom, "sparkConf")? {
            properties.push((k.clone(), value_text(&k, &v)?));
        }
        for (k, v) in object(&custom, "hadoopConf")? {
            let key = if k.starts_with("spark.hadoop.") { k.clone() } else { format!("spark.hadoop.{k}") };
            properties.push((key, value_text(&k, &v)?));
        }
        let container = match &template.target {
            Some(core::task_template::Target::Container(c)) => c,
            _ => return Err(codes::bad_template("the task has no container (the rendered args of flytekit's entrypoint)")),
        };
        for a in &container.args {
            if let Some(start) = a.find("{{.") {
                let var: String = a[start..].chars().take_while(|c| *c != '}').chain("}}".chars()).take(60).collect();
                return Err(codes::bad_template(format!(
                    "container arg {var} is a propeller template variable nobody rendered: the caller (propeller, `tern run`) renders them before CreateTask"
                )));
            }
        }
        Ok(Self {
            app_type,
            app_file,
            main_class,
            executor_path: text(&custom, "executorPath")?,
            properties,
            args: container.args.clone(),
            env: container.env.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
        })
    }
}

/// `local:///x` and `file:///x` (or `file:/x`) as `/x`; anything else (`hdfs://`, `s3a://`, a
/// plain path) unchanged.
pub fn local_path(file: &str) -> String {
    for prefix in ["local://", "file://", "file:"] {
        if let Some(rest) = file.strip_prefix(prefix) {
            if rest.starts_with('/') {
                return rest.to_owned();
            }
        }
    }
    file.to_owned()
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

fn text(custom: &Map<String, Value>, key: &str) -> Result<Option<String>, AgentError> {
    match custom.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(codes::bad_template(format!("{key} must be a text, got {other}"))),
    }
}

fn object(custom: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, AgentError> {
    match custom.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(other) => Err(codes::bad_template(format!("{key} must be an object, got {other}"))),
    }
}

/// A property value as Spark takes it: text (a `Struct` number `2.0` is written `2`).
fn value_text(key: &str, v: &Value) -> Result<String, AgentError> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).to_string(),
            _ => n.to_string(),
        },
        other => return Err(codes::bad_template(format!("the value of Spark property {key:?} must be a text, got {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::render::json_to_struct;

    pub(crate) fn template(custom: Value, args: &[&str]) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "spark".into(),
            custom: custom.as_object().map(json_to_struct),
            target: Some(core::task_template::Target::Container(core::Container {
                image: "img".into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                env: vec![core::KeyValuePair { key: "A".into(), value: "1".into() }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_flytekit_writes() {
        let t = template(
            json!({"mainApplicationFile": "local:///venv/lib/flytekit/bin/entrypoint.py", "executorPath": "/venv/bin/python",
                   "sparkConf": {"spark.driver.memory": "1g", "spark.executor.instances": 2.0}, "hadoopConf": {"fs.x": "y"},
                   "databricksConf": {}, "mainClass": ""}),
            &["pyflyte-execute", "--inputs", "/d/inputs.pb"],
        );
        let s = SparkTask::from_template(&t).unwrap();
        assert_eq!(s.app_type, AppType::Python);
        assert_eq!(s.app_file, "/venv/lib/flytekit/bin/entrypoint.py");
        assert_eq!(s.main_class, None);
        assert_eq!(s.executor_path.as_deref(), Some("/venv/bin/python"));
        assert_eq!(
            s.properties,
            [("spark.driver.memory".into(), "1g".into()), ("spark.executor.instances".into(), "2".into()), ("spark.hadoop.fs.x".into(), "y".into())]
        );
        assert_eq!(s.args, ["pyflyte-execute", "--inputs", "/d/inputs.pb"]);
        assert_eq!(s.env, [("A".to_owned(), "1".to_owned())]);
        let j = SparkTask::from_template(&template(json!({"mainApplicationFile": "hdfs://n/app.jar", "applicationType": "SCALA", "mainClass": "a.B"}), &[])).unwrap();
        assert_eq!((j.app_type, j.app_file.as_str(), j.main_class.as_deref()), (AppType::Scala, "hdfs://n/app.jar", Some("a.B")));
    }

    #[test]
    fn refuses_what_cannot_run() {
        let bad = [
            json!({}),
            json!({"mainApplicationFile": 3}),
            json!({"mainApplicationFile": "/a.R", "applicationType": "R"}),
            json!({"mainApplicationFile": "/a.jar", "applicationType": "JAVA"}),
            json!({"mainApplicationFile": "/a.py", "sparkConf": {"k": {"nested": 1}}}),
            json!({"mainApplicationFile": "/a.py", "sparkConf": "x"}),
            json!({"mainApplicationFile": "/a.py", "applicationType": "COBOL"}),
        ];
        for custom in bad {
            let e = SparkTask::from_template(&template(custom.clone(), &[])).unwrap_err();
            assert_eq!(e.code, codes::BAD_TEMPLATE, "{custom}");
        }
        let e = SparkTask::from_template(&template(json!({"mainApplicationFile": "/a.py"}), &["--output-prefix", "{{.outputPrefix}}"])).unwrap_err();
        assert!(e.message.contains("{{.outputPrefix}}"), "{}", e.message);
        let mut t = template(json!({"mainApplicationFile": "/a.py"}), &[]);
        t.target = None;
        assert_eq!(SparkTask::from_template(&t).unwrap_err().code, codes::BAD_TEMPLATE);
        t.custom = None;
        assert_eq!(SparkTask::from_template(&t).unwrap_err().code, codes::BAD_TEMPLATE);
    }

    #[test]
    fn local_paths() {
        assert_eq!(local_path("local:///a/b.py"), "/a/b.py");
        assert_eq!(local_path("file:/a/b.py"), "/a/b.py");
        assert_eq!(local_path("file:///a/b.py"), "/a/b.py");
        assert_eq!(local_path("s3a://b/k.py"), "s3a://b/k.py");
        assert_eq!(local_path("/plain.py"), "/plain.py");
    }
}
