//! The Databricks Jobs REST API (`/api/<2.1|2.2>/jobs/runs/...`) over reqwest, with PAT or
//! OAuth M2M bearer tokens. Tokens never appear in a message, a log line or a handle.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tern_agent_api::http::{failure_kind, retry_after};
use tern_agent_api::prelude::*;

use crate::codes;
use crate::config::{AuthMode, DatabricksConfig};
use crate::states::{RunState, RunStatus};
use crate::workspace::Workspace;

/// Longest piece of a Databricks error body kept in a message.
const MAX_BODY_IN_MESSAGE: usize = 2000;

/// How a call authenticates (stored in handles by name, never with a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Pat,
    OauthM2m,
}

impl AuthMethod {
    /// The method for a task: the template's `databricksAuthType` when given (it must be
    /// configured), else the section's `auth`.
    pub fn choose(config: &DatabricksConfig, requested: Option<&str>) -> Result<Self, AgentError> {
        let has_pat = config.token.is_some();
        let has_oauth = config.client_id.is_some() && config.client_secret.is_some();
        let method = match requested.map(|r| r.trim().to_ascii_lowercase()) {
            Some(r) if r == "pat" => Self::Pat,
            Some(r) if r == "oauth_m2m" => Self::OauthM2m,
            Some(r) if r == "oidc_federation" => {
                return Err(codes::auth_not_configured(
                    "databricksAuthType \"oidc_federation\" is not supported by Tern's Databricks agent: use \"pat\" or \
                     \"oauth_m2m\" with credentials in [agents.databricks]",
                ))
            }
            Some(r) => {
                let shown: String = r.chars().take(40).collect();
                return Err(codes::auth_not_configured(format!(
                    "databricksAuthType {shown:?} is not one of \"pat\", \"oauth_m2m\""
                )));
            }
            None => match config.auth {
                AuthMode::Pat => Self::Pat,
                AuthMode::OauthM2m => Self::OauthM2m,
                AuthMode::Auto if has_oauth => Self::OauthM2m,
                AuthMode::Auto => Self::Pat,
            },
        };
        match method {
            Self::Pat if !has_pat => Err(codes::auth_not_configured(
                "no Databricks token: set [agents.databricks] token (a secret reference, e.g. \"env:DATABRICKS_TOKEN\") \
                 or DATABRICKS_TOKEN",
            )),
            Self::OauthM2m if !has_oauth => Err(codes::auth_not_configured(
                "OAuth M2M needs [agents.databricks] client_id and client_secret (DATABRICKS_CLIENT_ID, \
                 DATABRICKS_CLIENT_SECRET)",
            )),
            m => Ok(m),
        }
    }
}

/// A run as `runs/get` returns it (the fields the agent reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Run {
    #[serde(default)]
    pub run_id: Option<u64>,
    #[serde(default)]
    pub job_id: Option<u64>,
    #[serde(default)]
    pub state: Option<RunState>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub run_page_url: Option<String>,
    #[serde(default)]
    pub tasks: Vec<RunTask>,
}

/// One task run of a run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunTask {
    #[serde(default)]
    pub run_id: Option<u64>,
    #[serde(default)]
    pub task_key: Option<String>,
}

/// `runs/get-output`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunOutput {
    #[serde(default)]
    pub logs: Option<String>,
    #[serde(default)]
    pub logs_truncated: Option<bool>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_trace: Option<String>,
    #[serde(default)]
    pub notebook_output: Option<Value>,
}

#[derive(Deserialize)]
struct Submitted {
    run_id: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The Jobs API client of one agent (shared by every call; caches OAuth tokens).
#[derive(Debug)]
pub struct JobsClient {
    http: reqwest::Client,
    config: std::sync::Arc<DatabricksConfig>,
    /// OAuth access tokens by token endpoint, with the instant they stop being used.
    tokens: Mutex<HashMap<String, (Secret, Instant)>>,
}

/// A Jobs API request: a GET with its query, or a POST with its JSON body.
enum Method<'a> {
    Get(&'a [(&'a str, String)]),
    Post(&'a Value),
}

impl JobsClient {
    pub fn new(config: std::sync::Arc<DatabricksConfig>) -> Result<Self, AgentError> {
        // Redirects are not followed: a redirect could carry the bearer token elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| AgentError::internal(codes::UNAVAILABLE, format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, config, tokens: Mutex::new(HashMap::new()) })
    }

    fn jobs_url(&self, ws: &Workspace, op: &str) -> String {
        format!("{}/api/{}/jobs/{op}", ws.base, self.config.api_version.as_str())
    }

    /// `POST runs/submit` → the run id.
    pub async fn submit(&self, ctx: &TaskContext, ws: &Workspace, auth: AuthMethod, body: &Value) -> Result<u64, AgentError> {
        let answer: Submitted = self.call(ctx, ws, auth, Method::Post(body), "runs/submit").await?;
        Ok(answer.run_id)
    }

    /// `GET runs/get?run_id=`.
    pub async fn get_run(&self, ctx: &TaskContext, ws: &Workspace, auth: AuthMethod, run_id: u64) -> Result<Run, AgentError> {
        self.call(ctx, ws, auth, Method::Get(&[("run_id", run_id.to_string())]), "runs/get").await
    }

    /// `POST runs/cancel`. A run that is unknown (404) or already finished counts as
    /// cancelled: deleting is idempotent.
    pub async fn cancel(&self, ctx: &TaskContext, ws: &Workspace, auth: AuthMethod, run_id: u64) -> Result<(), AgentError> {
        let body = serde_json::json!({ "run_id": run_id });
        match self.call::<Value>(ctx, ws, auth, Method::Post(&body), "runs/cancel").await {
            Ok(_) => Ok(()),
            Err(e) if e.code == codes::RUN_NOT_FOUND => Ok(()),
            Err(e) if e.code == codes::REQUEST_REJECTED && e.message.contains("INVALID_STATE") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET runs/get-output?run_id=` (of a task run).
    pub async fn get_output(&self, ctx: &TaskContext, ws: &Workspace, auth: AuthMethod, run_id: u64) -> Result<RunOutput, AgentError> {
        self.call(ctx, ws, auth, Method::Get(&[("run_id", run_id.to_string())]), "runs/get-output").await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        ctx: &TaskContext,
        ws: &Workspace,
        auth: AuthMethod,
        method: Method<'_>,
        op: &str,
    ) -> Result<T, AgentError> {
        let url = self.jobs_url(ws, op);
        let what = format!("{op} at {}", ws.instance);
        for attempt in 0..2 {
            let bearer = self.bearer(ctx, ws, auth, attempt > 0).await?;
            let request = match method {
                Method::Get(query) => self.http.get(&url).query(query),
                Method::Post(body) => self.http.post(&url).json(body),
            };
            let response = request
                .bearer_auth(bearer.expose())
                .timeout(self.timeout(ctx))
                .send()
                .await
                .map_err(|e| transport(&what, &e))?;
            let status = response.status();
            // An expired OAuth token: fetch a new one once (as flytekit does).
            if status == reqwest::StatusCode::UNAUTHORIZED && auth == AuthMethod::OauthM2m && attempt == 0 {
                tracing::debug!(instance = %ws.instance, op, "401 with a cached OAuth token: fetching a new one");
                continue;
            }
            let retry_after = retry_after(response.headers());
            let text = response.text().await.map_err(|e| transport(&what, &e))?;
            if status.is_success() {
                return serde_json::from_str(&text).map_err(|e| {
                    codes::unavailable(format!("{what}: the answer is not the Jobs API's JSON ({e}): {}", cut(&text)), None)
                });
            }
            return Err(http_error(&what, status, &text, retry_after));
        }
        Err(codes::denied(format!("{what}: HTTP 401 Unauthorized, also with a new OAuth token")))
    }

    fn timeout(&self, ctx: &TaskContext) -> Duration {
        let configured = self.config.request_timeout;
        match ctx.deadline {
            Some(d) => configured.min(d.saturating_duration_since(Instant::now()).max(Duration::from_millis(10))),
            None => configured,
        }
    }

    /// The bearer token for `auth`: the PAT, or a (cached) OAuth access token.
    async fn bearer(&self, ctx: &TaskContext, ws: &Workspace, auth: AuthMethod, refresh: bool) -> Result<Secret, AgentError> {
        match auth {
            AuthMethod::Pat => {
                let reference = self.config.token.as_ref().ok_or_else(|| codes::auth_not_configured("no Databricks token configured"))?;
                ctx.secrets().resolve(reference)
            }
            AuthMethod::OauthM2m => {
                let (Some(client_id), Some(secret_ref)) = (&self.config.client_id, &self.config.client_secret) else {
                    return Err(codes::auth_not_configured("OAuth M2M needs client_id and client_secret"));
                };
                let endpoint = match &self.config.token_endpoint {
                    Some(e) => crate::workspace::base_url(e).map_err(codes::auth_not_configured)?,
                    None => format!("{}/oidc/v1/token", ws.base),
                };
                let key = format!("{client_id} {endpoint}");
                if !refresh {
                    let cached = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned());
                    if let Some((token, until)) = cached {
                        if Instant::now() < until {
                            return Ok(token);
                        }
                    }
                }
                let client_secret = ctx.secrets().resolve(secret_ref)?;
                let what = format!("OAuth token from {}", crate::workspace::authority(&endpoint));
                let response = self
                    .http
                    .post(&endpoint)
                    .basic_auth(client_id, Some(client_secret.expose()))
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials&scope=all-apis")
                    .timeout(self.timeout(ctx))
                    .send()
                    .await
                    .map_err(|e| transport(&what, &e))?;
                let status = response.status();
                let retry_after = retry_after(response.headers());
                let text = response.text().await.map_err(|e| transport(&what, &e))?;
                if !status.is_success() {
                    // The body of a refused token request names the problem, never the secret.
                    return Err(match http_error(&what, status, &text, retry_after) {
                        e if e.is_retryable() => e,
                        e => codes::denied(e.message),
                    });
                }
                let answer: TokenAnswer = serde_json::from_str(&text)
                    .map_err(|e| codes::unavailable(format!("{what}: the answer is not an OAuth token ({e})"), None))?;
                let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
                let until = Instant::now() + life.saturating_sub(Duration::from_secs(60)).max(Duration::from_secs(1));
                let token = Secret::new(answer.access_token);
                if let Ok(mut t) = self.tokens.lock() {
                    t.insert(key, (token.clone(), until));
                }
                Ok(token)
            }
        }
    }
}

fn transport(what: &str, e: &reqwest::Error) -> AgentError {
    // reqwest's message names the URL (no secret in it) and the cause.
    codes::unavailable(format!("{what}: {}: {e}", failure_kind(e)), None)
}

/// A Databricks error answer, classified.
fn http_error(what: &str, status: reqwest::StatusCode, body: &str, retry_after: Option<Duration>) -> AgentError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error_code = parsed.as_ref().and_then(|v| v.get("error_code")).and_then(Value::as_str).unwrap_or_default();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error_description")).or_else(|| v.get("error")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| cut(body));
    let detail = if error_code.is_empty() {
        format!("{what}: HTTP {status}: {}", cut(&message))
    } else {
        format!("{what}: HTTP {status} {error_code}: {}", cut(&message))
    };
    match status.as_u16() {
        401 | 403 => codes::denied(detail),
        404 => AgentError::not_found(codes::RUN_NOT_FOUND, detail),
        429 => codes::unavailable(format!("{detail} (throttled)"), retry_after),
        501 => codes::rejected(format!("{detail} (does the workspace serve Jobs API this version? see api_version)")),
        s if s >= 500 => codes::unavailable(detail, retry_after),
        _ => codes::rejected(detail),
    }
}

fn cut(text: &str) -> String {
    tern_agent_api::http::cut(text, MAX_BODY_IN_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorClass;

    #[test]
    fn http_errors_are_classified() {
        let s = |c: u16| reqwest::StatusCode::from_u16(c).unwrap();
        let body = r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"bad spark_version"}"#;
        let e = http_error("runs/submit at x", s(400), body, None);
        assert_eq!((e.code.as_ref(), e.is_retryable()), (codes::REQUEST_REJECTED, false));
        assert!(e.message.contains("INVALID_PARAMETER_VALUE: bad spark_version"), "{}", e.message);
        assert_eq!(http_error("w", s(403), "{}", None).code, codes::PERMISSION_DENIED);
        let e = http_error("w", s(404), r#"{"error_code":"NOT_FOUND"}"#, None);
        assert_eq!((e.code.as_ref(), e.class), (codes::RUN_NOT_FOUND, ErrorClass::NotFound));
        let e = http_error("w", s(429), "slow down", Some(Duration::from_secs(3)));
        assert!(e.is_retryable() && e.retry_after == Some(Duration::from_secs(3)));
        assert!(http_error("w", s(503), "<html>", None).is_retryable());
        assert!(!http_error("w", s(501), "{}", None).is_retryable());
        assert!(http_error("w", s(500), &"x".repeat(100_000), None).message.len() < 3000);
    }

    #[test]
    fn auth_method_choice() {
        let pat = DatabricksConfig { token: Some("env:T".parse().unwrap()), ..Default::default() };
        let oauth = DatabricksConfig { client_id: Some("id".into()), client_secret: Some("env:S".parse().unwrap()), ..pat.clone() };
        assert_eq!(AuthMethod::choose(&pat, None).unwrap(), AuthMethod::Pat);
        assert_eq!(AuthMethod::choose(&oauth, None).unwrap(), AuthMethod::OauthM2m, "auto prefers OAuth when configured");
        assert_eq!(AuthMethod::choose(&oauth, Some("pat")).unwrap(), AuthMethod::Pat);
        for (c, asked) in [(&pat, Some("oauth_m2m")), (&pat, Some("oidc_federation")), (&pat, Some("kerberos")), (&DatabricksConfig::default(), None)] {
            assert_eq!(AuthMethod::choose(c, asked).unwrap_err().code, codes::AUTH_NOT_CONFIGURED, "{asked:?}");
        }
    }
}
