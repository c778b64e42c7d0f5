//! The Lepton workspace REST client (reqwest), with the shapes of leptonai 0.27.3:
//!
//! | call | SDK source |
//! |---|---|
//! | `POST /deployments` (a `LeptonDeployment`) | `api/v1/deployment.py` `DeploymentAPI.create` |
//! | `GET /deployments/{name}` | `DeploymentAPI.get` |
//! | `DELETE /deployments/{name}` | `DeploymentAPI.delete` |
//! | `GET /logs?deployment=…&start=…&end=…` → `{"data":{"result":[{"values":[[ns, line]]}]}}` | `api/v1/log.py` `LogAPI.get_log`, `cli/log.py` |
//!
//! every one relative to `<api_url>/api/v2/workspaces/<workspace_id>` (`api/v2/utils.py`
//! `_get_full_workspace_api_url`), with `Authorization: Bearer <token>` and the
//! `origin` header the SDK sends to DGX Cloud workspaces (`api/v2/client.py`). An error
//! answer is `{"code": …, "message": …}` (`cli/util.py`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tern_agent_api::http::{failure_kind, retry_after};
use tern_agent_api::prelude::*;

use crate::codes;
use crate::config::LeptonConfig;

const MAX_BODY_IN_MESSAGE: usize = 400;

/// What the agent reads of a `LeptonDeployment`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeploymentInfo {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub status: Option<DeploymentStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeploymentStatus {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Endpoint {
    #[serde(default)]
    pub internal_endpoint: Option<String>,
    #[serde(default)]
    pub external_endpoint: Option<String>,
}

impl DeploymentInfo {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.labels.as_ref()?.get(key).map(String::as_str)
    }

    pub fn state(&self) -> Option<&str> {
        self.status.as_ref()?.state.as_deref()
    }

    pub fn external_endpoint(&self) -> Option<&str> {
        self.status.as_ref()?.endpoint.as_ref()?.external_endpoint.as_deref().filter(|e| !e.is_empty())
    }
}

/// An HTTP refusal the caller may want to look at (status and Lepton's `code`).
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub error: AgentError,
}

#[derive(Debug, Clone)]
pub struct LeptonClient {
    config: Arc<LeptonConfig>,
    http: reqwest::Client,
}

impl LeptonClient {
    pub fn new(config: Arc<LeptonConfig>, services: &AgentServices) -> Self {
        Self { config, http: services.http.clone() }
    }

    fn timeout(&self, ctx: &TaskContext) -> Duration {
        let configured = self.config.request_timeout;
        match ctx.deadline {
            Some(d) => configured.min(d.saturating_duration_since(Instant::now()).max(Duration::from_millis(10))),
            None => configured,
        }
    }

    async fn send(
        &self,
        ctx: &TaskContext,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, String), Refusal> {
        let base = self.config.workspace_base().map_err(|error| Refusal { status: 0, error })?;
        let reference = self.config.token.as_ref().ok_or_else(|| Refusal {
            status: 0,
            error: codes::not_configured("[agents.lepton] sets no token (LEPTON_TOKEN): a secret reference such as \"env:LEPTON_TOKEN\""),
        })?;
        let token = ctx.secrets().resolve(reference).map_err(|error| Refusal { status: 0, error })?;
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token.expose())
            .header("origin", self.config.api_url.trim_end_matches('/'))
            .timeout(self.timeout(ctx));
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.map_err(|e| Refusal { status: 0, error: transport(&what, &e) })?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = response.text().await.map_err(|e| Refusal { status: 0, error: transport(&what, &e) })?;
        if status.is_success() {
            return Ok((status.as_u16(), text));
        }
        Err(Refusal { status: status.as_u16(), error: http_error(&what, status, &text, retry_after) })
    }

    /// `POST /deployments`.
    pub async fn create(&self, ctx: &TaskContext, body: &Value) -> Result<(), Refusal> {
        self.send(ctx, reqwest::Method::POST, "/deployments", &[], Some(body)).await.map(|_| ())
    }

    /// `GET /deployments/{name}`; `None` when Lepton answers 404.
    pub async fn get(&self, ctx: &TaskContext, name: &str) -> Result<Option<DeploymentInfo>, AgentError> {
        match self.send(ctx, reqwest::Method::GET, &format!("/deployments/{name}"), &[], None).await {
            Ok((_, text)) => serde_json::from_str(&text).map(Some).map_err(|e| {
                codes::unavailable(format!("GET /deployments/{name}: the answer is not a Lepton deployment ({e}): {}", cut(&text)), None)
            }),
            Err(r) if r.status == 404 => Ok(None),
            Err(r) => Err(r.error),
        }
    }

    /// `DELETE /deployments/{name}`; `false` when it did not exist (404).
    pub async fn delete(&self, ctx: &TaskContext, name: &str) -> Result<bool, AgentError> {
        match self.send(ctx, reqwest::Method::DELETE, &format!("/deployments/{name}"), &[], None).await {
            Ok(_) => Ok(true),
            Err(r) if r.status == 404 => Ok(false),
            Err(r) => Err(r.error),
        }
    }

    /// The deployment's log lines of the last `log_window`, oldest first.
    pub async fn logs(&self, ctx: &TaskContext, name: &str, limit: u64) -> Result<Vec<String>, AgentError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let start = now.saturating_sub(self.config.log_window);
        let query = [
            ("deployment", name.to_owned()),
            ("start", start.as_nanos().to_string()),
            ("end", now.as_nanos().to_string()),
            ("timestamps", "true".to_owned()),
            ("direction", "backward".to_owned()),
            ("limit", limit.to_string()),
            ("q", String::new()),
            ("job_query_mode", "alive_and_archive".to_owned()),
        ];
        let (_, text) = self.send(ctx, reqwest::Method::GET, "/logs", &query, None).await.map_err(|r| r.error)?;
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| codes::unavailable(format!("GET /logs: the answer is not JSON ({e}): {}", cut(&text)), None))?;
        Ok(log_lines(&answer))
    }
}

/// `data.result[].values[] = [ns, line]`, sorted by time.
pub fn log_lines(answer: &Value) -> Vec<String> {
    let mut lines: Vec<(u128, String)> = Vec::new();
    let streams = answer.pointer("/data/result").and_then(Value::as_array).cloned().unwrap_or_default();
    for stream in streams {
        for value in stream.get("values").and_then(Value::as_array).cloned().unwrap_or_default() {
            let ts = value.get(0).and_then(|t| t.as_str().and_then(|s| s.parse().ok()).or_else(|| t.as_u64().map(u128::from)));
            if let (Some(ts), Some(line)) = (ts, value.get(1).and_then(Value::as_str)) {
                lines.push((ts, line.trim_end_matches('\n').to_owned()));
            }
        }
    }
    lines.sort_by_key(|(ts, _)| *ts);
    lines.into_iter().map(|(_, l)| l).collect()
}

fn transport(what: &str, e: &reqwest::Error) -> AgentError {
    codes::unavailable(format!("Lepton {what}: {}: {e}", failure_kind(e)), None)
}

/// A Lepton error answer (`{"code","message"}`), classified.
pub fn http_error(what: &str, status: reqwest::StatusCode, body: &str, retry_after: Option<Duration>) -> AgentError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let code = parsed.as_ref().and_then(|v| v.get("code")).and_then(Value::as_str).unwrap_or_default();
    let message = parsed.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| cut(body));
    let detail = if code.is_empty() {
        format!("Lepton {what}: HTTP {status}: {}", cut(&message))
    } else {
        format!("Lepton {what}: HTTP {status} {code}: {}", cut(&message))
    };
    match status.as_u16() {
        401 | 403 => codes::denied(detail),
        404 => AgentError::not_found(codes::ENDPOINT_GONE, detail),
        429 => codes::unavailable(format!("{detail} (throttled)"), retry_after),
        s if s >= 500 => codes::unavailable(detail, retry_after),
        _ => codes::rejected(codes::REQUEST_REJECTED, detail),
    }
}

fn cut(text: &str) -> String {
    tern_agent_api::http::cut(text, MAX_BODY_IN_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_are_classified_by_status() {
        let s = |n: u16| reqwest::StatusCode::from_u16(n).unwrap();
        let body = r#"{"code":"InvalidParameter","message":"resource shape gpu.9x is not available"}"#;
        let e = http_error("POST /deployments", s(400), body, None);
        assert_eq!(e.code, codes::REQUEST_REJECTED);
        assert!(e.message.contains("InvalidParameter") && e.message.contains("gpu.9x"), "{}", e.message);
        assert!(!e.is_retryable());
        assert_eq!(http_error("x", s(401), "", None).code, codes::PERMISSION_DENIED);
        assert_eq!(http_error("x", s(403), "", None).code, codes::PERMISSION_DENIED);
        assert_eq!(http_error("x", s(404), "", None).code, codes::ENDPOINT_GONE);
        let t = http_error("x", s(429), "slow down", Some(Duration::from_secs(2)));
        assert!(t.is_retryable() && t.retry_after == Some(Duration::from_secs(2)));
        assert!(http_error("x", s(502), "<html>bad gateway</html>", None).is_retryable());
        assert!(http_error("x", s(503), &"x".repeat(5000), None).message.len() < 600);
    }

    #[test]
    fn log_lines_are_ordered_by_time() {
        let answer = json!({"data": {"result": [
            {"stream": {"replica": "r2"}, "values": [["30", "third\n"], ["10", "first"]]},
            {"stream": {"replica": "r1"}, "values": [["20", "second"], ["x", "dropped: no time"]]}
        ]}});
        assert_eq!(log_lines(&answer), ["first", "second", "third"]);
        assert!(log_lines(&json!({"status": "ok"})).is_empty());
    }
}
