//! The `AsyncAgent` implementation: create = jobs.insert with a deterministic job id, get = jobs.get
//! mapped through [`JOB_STATES`], delete = jobs.cancel.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::structs::json_to_struct;

use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::job_configuration::JobConfiguration;
use gcp_bigquery_client::model::job_configuration_query::JobConfigurationQuery;
use gcp_bigquery_client::model::job_reference::JobReference;

use crate::client::{Connector, Inserted};
use crate::codes::{self, bad_template};
use crate::config::{BigQueryConfig, Materialize};
use crate::outputs;
use crate::params::query_parameters;
use crate::states::{state_key, JOB_STATES};
use crate::template::QueryTask;

/// flytekitplugins-bigquery's task type.
pub const TASK_TYPE: &str = "bigquery_query_job_task";
/// Name of the console log link (flytekit's).
pub const LOG_LINK_NAME: &str = "BigQuery Console";

/// The handle `create` returns: `{"job_id","project","location",…,"v":1}` (flytekit's three
/// fields, plus what `get` needs to build outputs). Never a credential.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobMeta {
    pub job_id: String,
    pub project: String,
    pub location: Option<String>,
    /// The interface declares `results`.
    #[serde(default)]
    pub results: bool,
    /// Where materialized results go (set only when materializing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_prefix: Option<String>,
}

impl JobMeta {
    fn check(&self) -> Result<(), AgentError> {
        let bad = |m: String| AgentError::invalid_argument(tern_agent_api::prelude::codes::BAD_RESOURCE_META, m);
        if self.job_id.is_empty() || self.job_id.len() > 1024 || !self.job_id.chars().all(is_job_id_char) {
            return Err(bad(format!("resource_meta job_id {:?} is not a BigQuery job id", truncate(&self.job_id))));
        }
        if self.project.is_empty() || !self.project.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '_')) {
            return Err(bad(format!("resource_meta project {:?} is not a BigQuery project id", truncate(&self.project))));
        }
        Ok(())
    }

    fn location(&self) -> Option<&str> {
        self.location.as_deref().filter(|l| !l.is_empty())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn is_job_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The BigQuery agent.
pub struct BigQueryAgent {
    config: BigQueryConfig,
    connector: Connector,
}

impl BigQueryAgent {
    pub fn new(config: BigQueryConfig, _init: &AgentInit) -> Result<Self, AgentError> {
        let connector = Connector::new(&config)?;
        Ok(Self { config, connector })
    }

    /// The job id for this attempt: `<job_id_prefix><idempotency key>` (32 hex digits), so a
    /// repeated CreateTask names the same job. Without an execution identity (an ad-hoc call) a
    /// random id: such calls are not idempotent.
    pub fn job_id(&self, ctx: &TaskContext) -> String {
        match &ctx.idempotency_key {
            Some(key) => format!("{}{}", self.config.job_id_prefix, key.as_str()),
            None => format!("{}adhoc_{}", self.config.job_id_prefix, uuid::Uuid::new_v4().simple()),
        }
    }

    /// The console link flytekit puts in `log_links`.
    pub fn console_link(&self, meta: &JobMeta) -> core::TaskLog {
        core::TaskLog {
            uri: format!(
                "{}?project={}&j=bq:{}:{}&page=queryresults",
                self.config.console_url.trim_end_matches('/'),
                meta.project,
                meta.location().unwrap_or("US"),
                meta.job_id
            ),
            name: LOG_LINK_NAME.to_owned(),
            ..Default::default()
        }
    }

    fn query_configuration(task: &QueryTask, params: Vec<gcp_bigquery_client::model::query_parameter::QueryParameter>) -> Result<JobConfigurationQuery, AgentError> {
        let mut query: Map<String, Value> = task.query_config.clone();
        query.insert("query".into(), Value::String(task.sql.clone()));
        query.entry("useLegacySql").or_insert(Value::Bool(false));
        if !params.is_empty() {
            query.insert("parameterMode".into(), Value::String("NAMED".into()));
            query.insert(
                "queryParameters".into(),
                serde_json::to_value(params).map_err(|e| codes::bad_input(format!("cannot encode the parameters: {e}")))?,
            );
        }
        serde_json::from_value(Value::Object(query)).map_err(|e| {
            bad_template(format!("the QueryJobConfig keys in custom do not fit BigQuery's query configuration: {e}"))
        })
    }
}

#[async_trait::async_trait]
impl AsyncAgent for BigQueryAgent {
    fn name(&self) -> &str {
        "bigquery"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&JOB_STATES)
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let query = QueryTask::read(&task.template, &self.config)?;
        let params = query_parameters(&task.inputs, task.template.interface.as_ref(), self.config.datetime_parameters)?;
        let job_id = self.job_id(ctx);
        let job = Job {
            job_reference: Some(JobReference {
                job_id: Some(job_id.clone()),
                location: query.location.clone(),
                project_id: Some(query.project.clone()),
            }),
            configuration: Some(JobConfiguration {
                query: Some(Self::query_configuration(&query, params)?),
                ..Default::default()
            }),
            ..Default::default()
        };
        let client = self.connector.client(ctx).await?;
        let (job, attached) = match client.insert_or_attach(&query.project, job).await? {
            Inserted::Created(job) => (job, false),
            Inserted::Attached(job) => (job, true),
        };
        let location = job.job_reference.as_ref().and_then(|r| r.location.clone()).or(query.location);
        tracing::debug!(job_id = %job_id, project = %query.project, attached, "bigquery job");
        ResourceMeta::encode(&JobMeta {
            job_id,
            project: query.project,
            location,
            results: query.declares_results,
            output_prefix: (query.materialize == Materialize::Parquet && query.declares_results)
                .then(|| ctx.output_prefix.clone()),
        })
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let meta: JobMeta = meta.decode()?;
        meta.check()?;
        let client = self.connector.client(ctx).await?;
        let Some(job) = client.get(&meta.project, &meta.job_id, meta.location()).await? else {
            return Err(AgentError::not_found(
                codes::JOB_NOT_FOUND,
                format!(
                    "BigQuery has no job {} in project {} (location {}): it was created elsewhere, or has expired",
                    meta.job_id,
                    meta.project,
                    meta.location().unwrap_or("unset")
                ),
            ));
        };
        let link = self.console_link(&meta);
        let status = job.status.clone().unwrap_or_default();
        let state = status.state.clone().unwrap_or_default();
        let (reason, detail) = match &status.error_result {
            Some(err) => {
                let mut detail = err.message.clone().unwrap_or_default();
                if let Some(location) = err.location.as_deref().filter(|l| !l.is_empty()) {
                    detail.push_str(&format!(" (at {location})"));
                }
                (Some(err.reason.clone().unwrap_or_default()), detail)
            }
            None => (None, String::new()),
        };
        let key = state_key(&state, reason.as_deref());
        let mut result = JOB_STATES.classify_with(&key, &detail);
        let destination = job.configuration.as_ref().and_then(|c| c.query.as_ref()).and_then(|q| q.destination_table.clone());
        if result.phase == Phase::Succeeded && meta.results {
            let Some(table) = destination.as_ref() else {
                return Ok(TaskStatus::failed(AgentError::user(
                    codes::NO_RESULT_TABLE,
                    "the task declares the output `results`, but the job wrote no result table \
                     (a DDL/DML statement or a script has none): remove the output or end with a SELECT",
                ))
                .with_log_links(vec![link]));
            };
            let outputs = match &meta.output_prefix {
                Some(prefix) => {
                    let read = outputs::materialize_results(
                        &client,
                        ctx.data_store().as_ref(),
                        (&meta.project, &meta.job_id, meta.location()),
                        prefix,
                        self.config.page_size,
                        self.config.max_materialized_rows,
                    )
                    .await;
                    match read {
                        Ok(outputs) => outputs,
                        // Transient (BigQuery, the data store): the next GetTask reads again.
                        Err(e) if e.is_retryable() => return Err(e),
                        // The job succeeded but its rows cannot become the output (TERN-J012): the task
                        // fails for good, instead of every GetTask answering an error.
                        Err(e) => return Ok(TaskStatus::failed(e).with_log_links(vec![link])),
                    }
                }
                None => outputs::table_outputs(table),
            };
            result.outputs = Some(outputs);
        }
        let mut info = Map::new();
        info.insert("job_id".into(), Value::String(meta.job_id.clone()));
        if let Some(table) = &destination {
            info.insert("destination_table".into(), Value::String(outputs::bq_uri(table)));
        }
        result.custom_info = Some(json_to_struct(&info));
        Ok(result.with_log_links(vec![link]))
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let meta: JobMeta = meta.decode()?;
        meta.check()?;
        let client = self.connector.client(ctx).await?;
        client.cancel(&meta.project, &meta.job_id, meta.location()).await
    }
}
