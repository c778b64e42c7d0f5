//! [`SnowflakeAgent`]: the async agent for task type `snowflake`.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::core;
use tern_agent_api::prelude::*;

use crate::client::{Credentials, Endpoint, Rows, SnowflakeClient, Submission};
use crate::codes;
use crate::config::{Materialize, SnowflakeConfig};
use crate::outputs;
use crate::params;
use crate::results;
use crate::states::{NO_DATA, QUERY_STATES};
use crate::template::{SnowflakeTask, Target, TASK_TYPE};

/// Name of the submission record the agent keeps in the attempt's output prefix.
pub const LEDGER_FILE: &str = "snowflake_query.json";
/// Handles remembered per process for repeated creates (beyond, the ledger and the lookup answer).
const REMEMBERED: usize = 4096;

/// The handle (`resource_meta`): flytekit's `SnowflakeJobMetadata` fields plus Tern's. Never a
/// secret: credentials come from the agent's configuration on every call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMeta {
    pub user: String,
    pub account: String,
    pub database: String,
    pub schema: String,
    pub warehouse: String,
    pub query_id: String,
    pub has_output: bool,
    /// When the query was submitted (Unix seconds): bounds how long `NO_DATA` is waited out.
    pub submitted: u64,
    /// The query's tag (`tern:<idempotency key>`), as sent in `QUERY_TAG`.
    pub tag: String,
    /// Where the rows are materialized as Parquet; absent: flytekit's URI output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialize_to: Option<String>,
    /// Snowflake refused the statement at submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
}

/// A submission Snowflake refused, kept so GetTask reports it (permanently, without a retry of
/// doomed SQL) instead of CreateTask failing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl QueryMeta {
    fn target(&self) -> Target {
        Target {
            account: self.account.clone(),
            user: self.user.clone(),
            warehouse: self.warehouse.clone(),
            database: self.database.clone(),
            schema: self.schema.clone(),
        }
    }

    fn validate(&self) -> Result<(), AgentError> {
        let bad = |m: String| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_RESOURCE_META, m);
        if !(self.rejected.is_some() && self.query_id.is_empty()) && uuid::Uuid::parse_str(&self.query_id).is_err() {
            return Err(bad(format!("resource_meta query_id {:?} is not a Snowflake query id", truncate(&self.query_id))));
        }
        if !crate::config::valid_account(&self.account) {
            return Err(bad(format!("resource_meta account {:?} is not an account identifier", truncate(&self.account))));
        }
        if self.user.is_empty() {
            return Err(bad("resource_meta has no user".into()));
        }
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The Snowflake request id for a key: the key's 128 bits as a UUID (deterministic per attempt).
fn request_id(key: &str) -> String {
    match uuid::Uuid::try_parse(key) {
        Ok(u) => u.to_string(),
        Err(_) => uuid::Uuid::new_v4().to_string(),
    }
}

pub struct SnowflakeAgent {
    config: Arc<SnowflakeConfig>,
    client: SnowflakeClient,
    /// One create at a time per idempotency key in this process.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Handles of recent creates, by idempotency key.
    recent: Mutex<HashMap<String, ResourceMeta>>,
}

impl SnowflakeAgent {
    pub fn new(config: SnowflakeConfig) -> Result<Self, AgentError> {
        config.validate()?;
        let endpoint = match &config.endpoint {
            Some(e) => Endpoint::parse(e).map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.snowflake] endpoint: {m}")))?,
            None => Endpoint::snowflake(),
        };
        let client = SnowflakeClient::new(endpoint, config.role.clone(), config.request_timeout, config.max_retries);
        Ok(Self { config: Arc::new(config), client, inflight: Mutex::default(), recent: Mutex::default() })
    }

    pub fn config(&self) -> &SnowflakeConfig {
        &self.config
    }

    fn credentials(&self, ctx: &TaskContext) -> Result<Credentials, AgentError> {
        if let Some(key) = &self.config.private_key {
            return Ok(Credentials::PrivateKey(ctx.secrets().resolve(key)?));
        }
        if let Some(password) = &self.config.password {
            return Ok(Credentials::Password(ctx.secrets().resolve(password)?));
        }
        Err(AgentError::user(
            codes::NO_CREDENTIALS,
            "no Snowflake credentials: set `private_key` (PKCS#8 PEM) or `password` in [agents.snowflake] as a secret \
             reference (env:NAME or file:PATH), or SNOWFLAKE_PRIVATE_KEY_PATH / SNOWFLAKE_PASSWORD in the gateway's environment",
        ))
    }

    fn check_account(&self, account: &str) -> Result<(), AgentError> {
        if self.config.account_allowed(account) {
            return Ok(());
        }
        Err(AgentError::permission_denied(
            codes::ACCOUNT_NOT_ALLOWED,
            format!("Snowflake account {account:?} is not in this gateway's allowed_accounts ({})", self.config.allowed_accounts.join(", ")),
        ))
    }

    fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(key.to_owned()).or_default().clone()
    }

    fn remember(&self, key: &str, meta: &ResourceMeta) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= REMEMBERED {
            recent.clear();
        }
        recent.insert(key.to_owned(), meta.clone());
    }

    /// The submission recorded in the attempt's output prefix by an earlier create.
    async fn ledger(&self, ctx: &TaskContext, tag: &str) -> Option<ResourceMeta> {
        let meta = SubmissionRecord::for_attempt(ctx, LEDGER_FILE)?.read(ctx).await?;
        match meta.decode::<QueryMeta>() {
            Ok(q) if q.tag == tag => Some(meta),
            _ => None,
        }
    }

    async fn write_ledger(&self, ctx: &TaskContext, meta: &ResourceMeta) {
        if let Some(record) = SubmissionRecord::for_attempt(ctx, LEDGER_FILE) {
            record.write(ctx, meta).await;
        }
    }

    /// A query already submitted with `tag`, found in Snowflake's query history.
    async fn history(&self, target: &Target, credentials: &Credentials, tag: &str) -> Result<Option<String>, AgentError> {
        if target.database.is_empty() {
            tracing::debug!("no database: the INFORMATION_SCHEMA query-history lookup is skipped");
            return Ok(None);
        }
        let sql = history_sql(&target.database, tag);
        let rows = self.client.exec(target, credentials, &sql).await.map_err(|e| e.context("looking up earlier submissions in QUERY_HISTORY_BY_USER"))?;
        let first = match rows {
            Rows::Arrow(chunks) => {
                let (_, batches) = results::from_ipc(&chunks)?;
                batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
                    arrow_cast::display::array_value_to_string(b.column(0), 0).ok()
                })
            }
            Rows::Json { rows, .. } => rows.first().and_then(|r| r.first().cloned().flatten()),
            Rows::Empty => None,
        };
        Ok(first.filter(|q| uuid::Uuid::parse_str(q).is_ok()))
    }

    async fn status_of(&self, ctx: &TaskContext, meta: &QueryMeta) -> Result<TaskStatus, AgentError> {
        if let Some(r) = &meta.rejected {
            let error = if r.retryable { codes::incident(r.message.clone()) } else { AgentError::user(r.code.clone(), r.message.clone()) };
            let status = TaskStatus::failed(AgentError { code: r.code.clone().into(), ..error });
            // Snowflake names the refused statement's query id when it has one: its page shows the error.
            if meta.query_id.is_empty() {
                return Ok(status);
            }
            return Ok(status.with_log_links(vec![self.console_link(&meta.account, &meta.query_id)]));
        }
        let target = meta.target();
        self.check_account(&target.account)?;
        let credentials = self.credentials(ctx)?;
        let state = self.client.status(&target, &credentials, &meta.query_id).await?;
        let links = vec![self.console_link(&meta.account, &meta.query_id)];
        if state.status == NO_DATA {
            let waited = now().saturating_sub(meta.submitted);
            if waited > self.config.no_data_grace.as_secs() {
                return Ok(TaskStatus::failed(AgentError::unavailable(
                    codes::QUERY_UNKNOWN,
                    format!(
                        "Snowflake has had no record of query {} for {waited} s (no_data_grace is {} s): it never started, \
                         or belongs to another account or user",
                        meta.query_id,
                        self.config.no_data_grace.as_secs()
                    ),
                ))
                .with_log_links(links));
            }
        }
        let detail = if state.error_code.is_empty() && state.error_message.is_empty() {
            String::new()
        } else {
            codes::describe(&state.error_code, "", &state.error_message)
        };
        let mut status = QUERY_STATES.classify_with(&state.status, &detail);
        if QUERY_STATES.lookup(&state.status).is_some_and(|s| s.name == "FAILED_WITH_ERROR") {
            // Snowflake's own failures (internal error) are retryable, whatever the state says.
            let e = codes::from_snowflake(&state.error_code, "", &state.error_message, false);
            if e.is_retryable() {
                status = TaskStatus::failed(e);
            }
        }
        status.custom_info = Some(custom_info(&meta.query_id, &state.status));
        let status = status.with_log_links(links);
        if status.phase != Phase::Succeeded || !meta.has_output {
            return Ok(status);
        }
        let outputs = match &meta.materialize_to {
            None => outputs::uri_outputs(&target, &meta.query_id),
            Some(prefix) => {
                match outputs::parquet_outputs(ctx, &self.client, &target, &credentials, &meta.query_id, prefix, self.config.max_materialize_bytes).await {
                    Ok(o) => o,
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => return Ok(TaskStatus::failed(e).with_log_links(status.log_links)),
                }
            }
        };
        Ok(TaskStatus { outputs: Some(outputs), ..status })
    }

    /// Snowsight's page of the query (or the configured `console_url`).
    pub fn console_link(&self, account: &str, query_id: &str) -> core::TaskLog {
        let (org, name) = console_parts(account);
        let template = self.config.console_url.clone().unwrap_or_else(|| {
            "https://app.snowflake.com/{org}/{account_name}/#/compute/history/queries/{query_id}/detail".to_owned()
        });
        let uri = template
            .replace("{org}", &org)
            .replace("{account_name}", &name)
            .replace("{account}", &account.to_ascii_lowercase())
            .replace("{query_id}", query_id);
        core::TaskLog { uri, name: "Snowflake Query Details".into(), ..Default::default() }
    }
}

/// Snowsight's two path parts for an account: `org-account` → (`org`, `account`);
/// `locator.region[.cloud]` → (`region[.cloud]`, `locator`); a bare locator is in `us-west-2`.
fn console_parts(account: &str) -> (String, String) {
    let account = account.to_ascii_lowercase();
    if let Some((locator, region)) = account.split_once('.') {
        return (region.to_owned(), locator.to_owned());
    }
    match account.split_once('-') {
        Some((org, name)) => (org.to_owned(), name.to_owned()),
        None => ("us-west-2".to_owned(), account),
    }
}

/// The lookup for an earlier submission of this attempt (its `QUERY_TAG`), newest first.
pub fn history_sql(database: &str, tag: &str) -> String {
    let database = format!("\"{}\"", database.replace('"', "\"\""));
    let tag = tag.replace('\'', "''");
    format!(
        "SELECT QUERY_ID, EXECUTION_STATUS FROM TABLE({database}.INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER(RESULT_LIMIT => 10000)) \
         WHERE QUERY_TAG = '{tag}' ORDER BY START_TIME DESC LIMIT 1"
    )
}

fn custom_info(query_id: &str, status: &str) -> prost_types::Struct {
    let mut json = serde_json::Map::new();
    json.insert("query_id".into(), query_id.into());
    json.insert("snowflake_status".into(), status.into());
    tern_type_transformers::render::json_to_struct(&json)
}

#[async_trait]
impl AsyncAgent for SnowflakeAgent {
    fn name(&self) -> &str {
        "snowflake"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let parsed = SnowflakeTask::from_template(&task.template, &self.config)?;
        self.check_account(&parsed.target.account)?;
        let bound = params::bind(&parsed.statement, &task.inputs)?;
        let materialize = parsed.materialize.unwrap_or(self.config.materialize) == Materialize::Parquet && parsed.has_output;
        if materialize && ctx.output_prefix.is_empty() {
            return Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::INVALID_REQUEST,
                "materialize = \"parquet\" needs CreateTaskRequest.output_prefix",
            ));
        }
        let credentials = self.credentials(ctx)?;
        let key = match &ctx.idempotency_key {
            Some(k) => k.as_str().to_owned(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let tag = format!("tern:{key}");
        let meta_for = |query_id: String, rejected: Option<Rejection>| QueryMeta {
            user: parsed.target.user.clone(),
            account: parsed.target.account.clone(),
            database: parsed.target.database.clone(),
            schema: parsed.target.schema.clone(),
            warehouse: parsed.target.warehouse.clone(),
            query_id,
            has_output: parsed.has_output,
            submitted: now(),
            tag: tag.clone(),
            materialize_to: materialize.then(|| ctx.output_prefix.clone()),
            rejected,
        };

        let lock = self.key_lock(&key);
        let _one_at_a_time = lock.lock().await;
        let known = ctx.idempotency_key.is_some();
        if known {
            if let Some(meta) = self.recent.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned() {
                return Ok(meta);
            }
            if let Some(meta) = self.ledger(ctx, &tag).await {
                self.remember(&key, &meta);
                return Ok(meta);
            }
            if self.config.history_lookup {
                if let Some(query_id) = self.history(&parsed.target, &credentials, &tag).await? {
                    tracing::info!(%query_id, %tag, "found this attempt's query in Snowflake's query history; not submitting again");
                    let meta = ResourceMeta::encode(&meta_for(query_id, None))?;
                    self.write_ledger(ctx, &meta).await;
                    self.remember(&key, &meta);
                    return Ok(meta);
                }
            }
        }
        let submission = self.client.submit(&parsed.target, &credentials, &bound, &tag, &request_id(&key)).await?;
        let query = match submission {
            Submission::Accepted { query_id } => {
                tracing::info!(%query_id, %tag, account = %parsed.target.account, "submitted a Snowflake query");
                meta_for(query_id, None)
            }
            Submission::Rejected { query_id, error } => {
                let mut message = error.message.clone();
                message.truncate(4000);
                meta_for(query_id.unwrap_or_default(), Some(Rejection { code: error.code.to_string(), message, retryable: error.is_retryable() }))
            }
        };
        let meta = ResourceMeta::encode(&query)?;
        if known {
            self.write_ledger(ctx, &meta).await;
            self.remember(&key, &meta);
        }
        Ok(meta)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let meta: QueryMeta = meta.decode()?;
        meta.validate()?;
        self.status_of(ctx, &meta).await
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let meta: QueryMeta = meta.decode()?;
        meta.validate()?;
        if meta.rejected.is_some() {
            return Ok(());
        }
        let target = meta.target();
        self.check_account(&target.account)?;
        let credentials = self.credentials(ctx)?;
        let sql = format!("SELECT SYSTEM$CANCEL_QUERY('{}')", meta.query_id);
        match self.client.exec(&target, &credentials, &sql).await {
            Ok(rows) => {
                tracing::info!(query_id = %meta.query_id, answer = %first_text(&rows), "cancelled the Snowflake query");
                Ok(())
            }
            // "Statement … not found": nothing left to cancel.
            Err(e) if e.code == codes::QUERY_FAILED && (e.message.contains("000709") || e.message.contains("not found")) => Ok(()),
            Err(e) => Err(e.context(format!("cancelling Snowflake query {}", meta.query_id))),
        }
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&QUERY_STATES)
    }
}

fn first_text(rows: &Rows) -> String {
    match rows {
        Rows::Json { rows, .. } => rows.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_default(),
        Rows::Arrow(chunks) => results::from_ipc(chunks)
            .ok()
            .and_then(|(_, b)| b.first().filter(|b| b.num_rows() > 0).and_then(|b| arrow_cast::display::array_value_to_string(b.column(0), 0).ok()))
            .unwrap_or_default(),
        Rows::Empty => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_links() {
        let agent = SnowflakeAgent::new(SnowflakeConfig::default()).unwrap();
        let q = "01b2c3d4-0000-1234-0000-000012345678";
        assert_eq!(agent.console_link("MyOrg-Analytics", q).uri, format!("https://app.snowflake.com/myorg/analytics/#/compute/history/queries/{q}/detail"));
        assert_eq!(agent.console_link("xy12345.eu-west-1", q).uri, format!("https://app.snowflake.com/eu-west-1/xy12345/#/compute/history/queries/{q}/detail"));
        let agent = SnowflakeAgent::new(SnowflakeConfig { console_url: Some("https://sf.internal/{account}/q/{query_id}".into()), ..Default::default() }).unwrap();
        assert_eq!(agent.console_link("A", q).uri, format!("https://sf.internal/a/q/{q}"));
    }

    #[test]
    fn history_lookup_quotes_what_it_inlines() {
        let sql = history_sql("my\"db", "tern:0123abcd");
        assert!(sql.contains("TABLE(\"my\"\"db\".INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER(RESULT_LIMIT => 10000))"), "{sql}");
        assert!(sql.contains("WHERE QUERY_TAG = 'tern:0123abcd'"), "{sql}");
        assert!(history_sql("d", "it's").contains("'it''s'"));
    }

    #[test]
    fn handles_hold_no_secret_and_are_checked() {
        let meta = QueryMeta {
            user: "U".into(),
            account: "org-a".into(),
            database: "D".into(),
            schema: "S".into(),
            warehouse: "W".into(),
            query_id: "01b2c3d4-0000-1234-0000-000012345678".into(),
            has_output: true,
            submitted: 1,
            tag: "tern:k".into(),
            materialize_to: None,
            rejected: None,
        };
        assert!(meta.validate().is_ok());
        let text = String::from_utf8(ResourceMeta::encode(&meta).unwrap().into_bytes()).unwrap();
        for field in ["\"user\"", "\"account\"", "\"database\"", "\"schema\"", "\"warehouse\"", "\"query_id\"", "\"has_output\""] {
            assert!(text.contains(field), "flytekit's field {field} is in {text}");
        }
        assert!(QueryMeta { query_id: "unknown-1".into(), ..meta.clone() }.validate().is_err());
        assert!(QueryMeta { account: "evil.com/x".into(), ..meta }.validate().is_err());
        assert_eq!(request_id("0123456789abcdef0123456789abcdef"), "01234567-89ab-cdef-0123-456789abcdef");
    }
}
