//! `[agents.bigquery]`: where BigQuery is, how the agent authenticates, and what it does with a
//! query's result.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// Google's BigQuery REST v2 base URL.
pub const GOOGLE_ENDPOINT: &str = "https://bigquery.googleapis.com/bigquery/v2";
/// Where the log link points (`…?project=P&j=bq:LOCATION:JOB&page=queryresults`, as flytekit).
pub const GOOGLE_CONSOLE: &str = "https://console.cloud.google.com/bigquery";

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// OAuth 2 with the service-account JSON key `credentials` points to (the key's `token_uri`
    /// is asked for tokens, which are cached and refreshed).
    #[default]
    ServiceAccount,
    /// No credentials at all: for emulators and test doubles only.
    Anonymous,
}

/// What the agent does with the table a query wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialize {
    /// `results` is `bq://project:dataset.table`, as flytekit's connector returns it.
    #[default]
    None,
    /// The rows are read (getQueryResults pages) and written as Parquet under the output prefix;
    /// `results` is that dataset, so a downstream DuckDB (or any flytekit) task reads it.
    Parquet,
}

/// How a `datetime` input is passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DatetimeParameter {
    /// `DATETIME` (the UTC wall-clock time), as flytekit's connector does.
    #[default]
    Datetime,
    /// `TIMESTAMP` (an instant, `…+00:00`).
    Timestamp,
}

/// Settings of the BigQuery agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BigQueryConfig {
    /// BigQuery REST base URL. A URL without a path gets `/bigquery/v2` (so
    /// `BIGQUERY_EMULATOR_HOST=http://localhost:9050` works as for Google's Python client).
    pub endpoint: String,
    /// `"service_account"` (default) or `"anonymous"` (emulators).
    pub auth: AuthMode,
    /// Secret reference to a service-account JSON key (`file:/var/secrets/google/key.json`,
    /// `env:BQ_KEY_JSON`). Default from `GOOGLE_APPLICATION_CREDENTIALS`.
    pub credentials: Option<SecretRef>,
    /// Project billed for jobs whose template names none (`custom.ProjectID`). Default from
    /// `GOOGLE_CLOUD_PROJECT`.
    pub default_project: Option<String>,
    /// Location of jobs whose template names none (`custom.Location`); unset: BigQuery picks.
    pub default_location: Option<String>,
    /// `"none"` (default, flytekit's `bq://` output) or `"parquet"`; a template's
    /// `custom.materialize` overrides it per task.
    pub materialize: Materialize,
    /// Rows per getQueryResults page while materializing.
    pub page_size: u32,
    /// More rows than this fail a materializing task (`TERN-J012`).
    pub max_materialized_rows: u64,
    /// `"DATETIME"` (default, flytekit's) or `"TIMESTAMP"`: the type of `datetime` inputs.
    pub datetime_parameters: DatetimeParameter,
    /// Prefix of the job ids the agent derives from each attempt's idempotency key.
    pub job_id_prefix: String,
    /// Base of the console link in `Resource.log_links`.
    pub console_url: String,
    /// Time allowed for one HTTP request to BigQuery.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for BigQueryConfig {
    fn default() -> Self {
        Self {
            endpoint: GOOGLE_ENDPOINT.to_owned(),
            auth: AuthMode::ServiceAccount,
            credentials: None,
            default_project: None,
            default_location: None,
            materialize: Materialize::None,
            page_size: 10_000,
            max_materialized_rows: 10_000_000,
            datetime_parameters: DatetimeParameter::Datetime,
            job_id_prefix: "tern_".to_owned(),
            console_url: GOOGLE_CONSOLE.to_owned(),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl BigQueryConfig {
    /// The REST base URL: `endpoint`, with `/bigquery/v2` added when it has no path.
    pub fn base_url(&self) -> String {
        let trimmed = self.endpoint.trim().trim_end_matches('/');
        let after_scheme = trimmed.split_once("://").map(|(_, rest)| rest).unwrap_or(trimmed);
        if after_scheme.contains('/') {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/bigquery/v2")
        }
    }

    /// Refuses settings that would fail every task, naming the key.
    pub fn validate(&self) -> Result<(), AgentError> {
        let bad = |m: String| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.bigquery] {m}"));
        let url = self.endpoint.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(bad(format!("endpoint = {url:?} is not an http(s) URL")));
        }
        if self.page_size == 0 {
            return Err(bad("page_size must be at least 1".into()));
        }
        if !self.job_id_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad(format!(
                "job_id_prefix = {:?}: a BigQuery job id may contain only letters, digits, '_' and '-'",
                self.job_id_prefix
            )));
        }
        if self.job_id_prefix.len() > 900 {
            return Err(bad("job_id_prefix is longer than 900 characters (job ids are at most 1024)".into()));
        }
        if self.request_timeout.is_zero() {
            return Err(bad("request_timeout must be positive".into()));
        }
        Ok(())
    }
}

/// The factory behind `[agents.bigquery]`.
pub struct BigQueryFactory;

impl AgentFactory for BigQueryFactory {
    type Config = BigQueryConfig;
    const NAME: &'static str = "bigquery";
    const DESCRIPTION: &'static str = "BigQuery query jobs (flytekitplugins-bigquery's bigquery_query_job_task)";

    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[
            StandardEnv::secret_file("GOOGLE_APPLICATION_CREDENTIALS", "credentials"),
            StandardEnv::value("GOOGLE_CLOUD_PROJECT", "default_project"),
            StandardEnv::value("BIGQUERY_EMULATOR_HOST", "endpoint"),
        ];
        ENV
    }

    fn build(config: BigQueryConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config.validate()?;
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::BigQueryAgent::new(config, init)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_gets_the_api_path_when_it_has_none() {
        let c = |e: &str| BigQueryConfig { endpoint: e.into(), ..Default::default() }.base_url();
        assert_eq!(c("http://127.0.0.1:9050"), "http://127.0.0.1:9050/bigquery/v2");
        assert_eq!(c("http://127.0.0.1:9050/"), "http://127.0.0.1:9050/bigquery/v2");
        assert_eq!(c("https://bq.internal/custom/v2/"), "https://bq.internal/custom/v2");
        assert_eq!(BigQueryConfig::default().base_url(), GOOGLE_ENDPOINT);
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (config, key) in [
            (BigQueryConfig { endpoint: "bigquery.googleapis.com".into(), ..Default::default() }, "endpoint"),
            (BigQueryConfig { page_size: 0, ..Default::default() }, "page_size"),
            (BigQueryConfig { job_id_prefix: "a b".into(), ..Default::default() }, "job_id_prefix"),
            (BigQueryConfig { request_timeout: Duration::ZERO, ..Default::default() }, "request_timeout"),
        ] {
            let e = config.validate().unwrap_err();
            assert!(e.message.contains(key) && e.message.contains("[agents.bigquery]"), "{e}");
        }
        assert!(BigQueryConfig::default().validate().is_ok());
    }

    #[test]
    fn the_section_reads_from_toml_and_refuses_unknown_keys_and_secret_values() {
        let c: BigQueryConfig = toml::from_str(
            "endpoint = \"http://127.0.0.1:9050\"\nauth = \"anonymous\"\nmaterialize = \"parquet\"\n\
             credentials = \"file:/k.json\"\ndatetime_parameters = \"TIMESTAMP\"\nrequest_timeout = \"5s\"",
        )
        .unwrap();
        assert_eq!(c.auth, AuthMode::Anonymous);
        assert_eq!(c.materialize, Materialize::Parquet);
        assert_eq!(c.credentials, Some(SecretRef::File("/k.json".into())));
        assert_eq!(c.datetime_parameters, DatetimeParameter::Timestamp);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert!(toml::from_str::<BigQueryConfig>("endpont = \"x\"").is_err());
        let pasted = serde_json::json!({"credentials": "{\"private_key\": \"-----BEGIN PRIVATE KEY\"}"});
        let e = serde_json::from_value::<BigQueryConfig>(pasted).unwrap_err();
        assert!(e.to_string().contains("env:NAME") && !e.to_string().contains("BEGIN"), "{e}");
    }
}
