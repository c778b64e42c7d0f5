//! `[agents.snowflake]`: where Snowflake is, the credentials (secret references only), defaults
//! for templates, idempotency and result settings.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;


/// How a successful query's `results` output is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialize {
    /// As flytekit's connector: a StructuredDataset whose URI names the query
    /// (`snowflake://user:account/warehouse/database/schema/<query id>`); no rows are read.
    #[default]
    None,
    /// The rows (`RESULT_SCAN` of the query) as Parquet at `<output_prefix>/results/00000`, a
    /// StructuredDataset any DuckDB or pandas node reads.
    Parquet,
}

impl Materialize {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Some(Self::None),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// Operator settings for every Snowflake task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnowflakeConfig {
    /// Base URL replacing `https://<account>.snowflakecomputing.com` (a private link, a proxy, an
    /// emulator). `{account}` is replaced by the account: `https://{account}.privatelink.snowflakecomputing.com`.
    /// A bare host means `https://host`.
    pub endpoint: Option<String>,
    /// Account for templates whose `config` names none (flytekit's always name one).
    pub account: Option<String>,
    /// Accounts tasks may use (`org-account` or `locator.region`, compared ignoring case);
    /// empty: any. Set it wherever callers are not fully trusted: the credentials are sent to
    /// the account a template names.
    pub allowed_accounts: Vec<String>,
    /// Login name for templates whose `config` names none.
    pub user: Option<String>,
    /// Password (a secret reference, `env:NAME` or `file:PATH`).
    pub password: Option<SecretRef>,
    /// Unencrypted PKCS#8 PEM private key for key-pair (JWT) authentication (a secret
    /// reference), as flytekit's `snowflake_private_key` secret. Wins over `password`.
    pub private_key: Option<SecretRef>,
    /// Role to log in with (the user's default role when unset).
    pub role: Option<String>,
    /// Warehouse, database and schema for templates whose `config` leaves them empty.
    pub warehouse: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    /// Before submitting, look for a query already submitted with this attempt's idempotency
    /// tag in `INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER` (real Snowflake; emulators lack it).
    pub history_lookup: bool,
    /// How `results` is written (a template's `custom.materialize` wins).
    pub materialize: Materialize,
    /// How long a query may be unknown to Snowflake's monitoring (`NO_DATA`) after submission
    /// before the task fails as lost (`TERN-F008`, retryable).
    #[serde(with = "humantime_serde")]
    pub no_data_grace: Duration,
    /// Longest one HTTP call to Snowflake may take.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How many times one HTTP call is retried after a transient failure (connection refused or
    /// reset, timeout, HTTP 408/429/5xx), with exponential backoff and jitter from 1 s; 0 turns
    /// retries off. At most 10.
    pub max_retries: u32,
    /// Log link for a query; `{account}`, `{org}`, `{account_name}` and `{query_id}` are replaced.
    /// Default: Snowsight's query page, `https://app.snowflake.com/{org}/{account_name}/#/compute/history/queries/{query_id}/detail`.
    pub console_url: Option<String>,
    /// Largest result (in Arrow bytes) materialized as Parquet.
    pub max_materialize_bytes: u64,
}

impl Default for SnowflakeConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            account: None,
            allowed_accounts: Vec::new(),
            user: None,
            password: None,
            private_key: None,
            role: None,
            warehouse: None,
            database: None,
            schema: None,
            history_lookup: true,
            materialize: Materialize::None,
            no_data_grace: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
            max_retries: 3,
            console_url: None,
            max_materialize_bytes: 1 << 30,
        }
    }
}

/// Whether `account` is an account identifier (`org-account`, `locator`, `locator.region.cloud`):
/// it becomes part of a host name, so nothing else may pass.
pub fn valid_account(account: &str) -> bool {
    !account.is_empty()
        && account.len() <= 255
        && account.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !account.starts_with(['.', '-'])
        && !account.ends_with(['.', '-'])
        && !account.contains("..")
}

impl SnowflakeConfig {
    /// Refuses settings that would fail every task, naming the key.
    pub fn validate(&self) -> Result<(), AgentError> {
        let bad = |m: String| AgentError::invalid_argument(codes_bad_config(), format!("[agents.snowflake] {m}"));
        if let Some(endpoint) = &self.endpoint {
            crate::client::Endpoint::parse(endpoint).map_err(|e| bad(format!("endpoint: {e}")))?;
        }
        for (key, account) in self.account.iter().map(|a| ("account", a)).chain(self.allowed_accounts.iter().map(|a| ("allowed_accounts", a))) {
            if !valid_account(account) {
                return Err(bad(format!("{key}: {account:?} is not a Snowflake account identifier (letters, digits, '-', '_', '.')")));
            }
        }
        if self.request_timeout.is_zero() {
            return Err(bad("request_timeout must be more than 0s".into()));
        }
        if self.max_retries > 10 {
            return Err(bad(format!("max_retries = {} is more than 10", self.max_retries)));
        }
        if let Some(url) = &self.console_url {
            if !url.contains("{query_id}") {
                return Err(bad(format!("console_url {url:?} must contain {{query_id}}")));
            }
        }
        Ok(())
    }

    /// Whether tasks may use `account`.
    pub fn account_allowed(&self, account: &str) -> bool {
        self.allowed_accounts.is_empty() || self.allowed_accounts.iter().any(|a| a.eq_ignore_ascii_case(account))
    }
}

fn codes_bad_config() -> &'static str {
    tern_agent_api::error::codes::BAD_AGENT_CONFIG
}

/// The factory behind `[agents.snowflake]`.
pub struct SnowflakeFactory;

impl AgentFactory for SnowflakeFactory {
    type Config = SnowflakeConfig;
    const NAME: &'static str = "snowflake";
    const DESCRIPTION: &'static str = "SQL on Snowflake (flytekitplugins-snowflake's `snowflake` tasks)";

    /// The variables of Snowflake's own tools (SnowSQL/Snowflake CLI, the `snowflake-api` crate).
    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[
            StandardEnv::value("SNOWFLAKE_HOST", "endpoint"),
            StandardEnv::value("SNOWFLAKE_ACCOUNT", "account"),
            StandardEnv::value("SNOWFLAKE_USER", "user"),
            StandardEnv::secret("SNOWFLAKE_PASSWORD", "password"),
            StandardEnv::secret("SNOWFLAKE_PRIVATE_KEY", "private_key"),
            StandardEnv::secret_file("SNOWFLAKE_PRIVATE_KEY_PATH", "private_key"),
            StandardEnv::value("SNOWFLAKE_ROLE", "role"),
            StandardEnv::value("SNOWFLAKE_WAREHOUSE", "warehouse"),
            StandardEnv::value("SNOWFLAKE_DATABASE", "database"),
            StandardEnv::value("SNOWFLAKE_SCHEMA", "schema"),
        ];
        ENV
    }

    fn build(config: SnowflakeConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config.validate()?;
        let _ = init;
        let agent = crate::SnowflakeAgent::new(config)?;
        Ok(AgentHandle::Async(std::sync::Arc::new(agent)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refusals() {
        let c = SnowflakeConfig::default();
        assert!(c.validate().is_ok());
        assert!(c.history_lookup);
        assert_eq!(c.materialize, Materialize::None);
        for (config, key) in [
            (SnowflakeConfig { endpoint: Some("ftp://x".into()), ..Default::default() }, "endpoint"),
            (SnowflakeConfig { account: Some("evil.com/".into()), ..Default::default() }, "account"),
            (SnowflakeConfig { allowed_accounts: vec!["a b".into()], ..Default::default() }, "allowed_accounts"),
            (SnowflakeConfig { request_timeout: Duration::ZERO, ..Default::default() }, "request_timeout"),
            (SnowflakeConfig { max_retries: 11, ..Default::default() }, "max_retries"),
            (SnowflakeConfig { console_url: Some("https://x/".into()), ..Default::default() }, "console_url"),
        ] {
            let e = config.validate().unwrap_err();
            assert!(e.message.contains(key) && e.message.contains("[agents.snowflake]"), "{e}");
        }
    }

    #[test]
    fn account_identifiers() {
        for ok in ["myorg-myacct", "xy12345", "xy12345.us-east-1", "xy12345.eu-west-1.aws", "my_org-acct_2"] {
            assert!(valid_account(ok), "{ok}");
        }
        for bad in ["", "a/b", "a@b", "evil.com:443", "x?y", "a b", ".a", "a.", "a..b", "é"] {
            assert!(!valid_account(bad), "{bad}");
        }
        let c = SnowflakeConfig { allowed_accounts: vec!["MyOrg-Acct".into()], ..Default::default() };
        assert!(c.account_allowed("myorg-acct") && !c.account_allowed("other"));
        assert!(SnowflakeConfig::default().account_allowed("anything"));
    }

    #[test]
    fn parses_from_toml_refusing_unknown_keys() {
        let c: SnowflakeConfig = toml::from_str(
            "endpoint = \"http://127.0.0.1:8085\"\npassword = \"env:SF_PW\"\nno_data_grace = \"90s\"\nmaterialize = \"parquet\"",
        )
        .unwrap();
        assert_eq!(c.no_data_grace, Duration::from_secs(90));
        assert_eq!(c.materialize, Materialize::Parquet);
        assert_eq!(c.password.unwrap().reference(), "env:SF_PW");
        assert!(toml::from_str::<SnowflakeConfig>("pasword = \"env:X\"").is_err());
        assert!(toml::from_str::<SnowflakeConfig>("password = \"hunter2\"").is_err(), "a value is not a reference");
    }
}
