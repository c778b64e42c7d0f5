//! The Ray Jobs REST API of a cluster's dashboard (`/api/jobs/…`) over reqwest. The bearer
//! token and the configured headers are resolved from their references on each call and
//! never appear in a message, a log line or a handle.
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tern_agent_api::prelude::*;

use crate::codes;
use crate::config::RayConfig;

/// Longest piece of a Ray error body kept in a message (Ray answers a refused submission
/// with a Python traceback).
const MAX_BODY_IN_MESSAGE: usize = 2000;

/// A job as `GET /api/jobs/{id}` returns it (the fields the agent reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobDetails {
    #[serde(default)]
    pub submission_id: Option<String>,
    #[serde(default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub entrypoint: Option<String>,
    #[serde(default)]
    pub driver_exit_code: Option<i64>,
}

#[derive(Deserialize)]
struct Logs {
    #[serde(default)]
    logs: String,
}

/// The Jobs API client of one agent.
#[derive(Debug)]
pub struct JobsClient {
    http: reqwest::Client,
    config: std::sync::Arc<RayConfig>,
}

enum Method<'a> {
    Get,
    Post(&'a Value),
}

impl JobsClient {
    pub fn new(config: std::sync::Arc<RayConfig>) -> Result<Self, AgentError> {
        // Redirects are not followed: one could carry the bearer token elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| AgentError::internal(codes::UNAVAILABLE, format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// `POST /api/jobs/` → the submission id Ray gives the job.
    pub async fn submit(&self, ctx: &TaskContext, base: &str, body: &Value) -> Result<String, AgentError> {
        #[derive(Deserialize)]
        struct Submitted {
            #[serde(default)]
            submission_id: Option<String>,
            #[serde(default)]
            job_id: Option<String>,
        }
        let answer: Submitted = self.call(ctx, base, Method::Post(body), "/api/jobs/").await?;
        answer
            .submission_id
            .or(answer.job_id)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| codes::unavailable("POST /api/jobs/: the answer names no submission_id", None))
    }

    /// `GET /api/jobs/{id}`.
    pub async fn get(&self, ctx: &TaskContext, base: &str, id: &str) -> Result<JobDetails, AgentError> {
        self.call(ctx, base, Method::Get, &format!("/api/jobs/{}", path_segment(id))).await
    }

    /// `GET /api/jobs/{id}/logs`: the driver's whole output.
    pub async fn logs(&self, ctx: &TaskContext, base: &str, id: &str) -> Result<String, AgentError> {
        let logs: Logs = self.call(ctx, base, Method::Get, &format!("/api/jobs/{}/logs", path_segment(id))).await?;
        Ok(logs.logs)
    }

    /// `POST /api/jobs/{id}/stop`. An unknown job (404) or a finished one (`stopped: false`)
    /// is fine: deleting is idempotent.
    pub async fn stop(&self, ctx: &TaskContext, base: &str, id: &str) -> Result<bool, AgentError> {
        let path = format!("/api/jobs/{}/stop", path_segment(id));
        match self.call::<Value>(ctx, base, Method::Post(&Value::Object(Default::default())), &path).await {
            Ok(v) => Ok(v.get("stopped").and_then(Value::as_bool).unwrap_or(false)),
            Err(e) if e.code == codes::JOB_NOT_FOUND => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn call<T: DeserializeOwned>(&self, ctx: &TaskContext, base: &str, method: Method<'_>, path: &str) -> Result<T, AgentError> {
        let url = format!("{base}{path}");
        let what = match method {
            Method::Get => format!("GET {path}"),
            Method::Post(_) => format!("POST {path}"),
        };
        let mut request = match method {
            Method::Get => self.http.get(&url),
            Method::Post(body) => self.http.post(&url).json(body),
        };
        if let Some(reference) = &self.config.token {
            request = request.bearer_auth(ctx.secrets().resolve(reference)?.expose());
        }
        for (name, reference) in &self.config.headers {
            let value = ctx.secrets().resolve(reference)?;
            let value = reqwest::header::HeaderValue::from_str(value.expose())
                .map_err(|_| codes::denied(format!("the secret of header {name} is not a valid header value")))?;
            request = request.header(name.as_str(), value);
        }
        let response = request.timeout(self.timeout(ctx)).send().await.map_err(|e| transport(&what, &e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(|e| transport(&what, &e))?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| {
                codes::unavailable(format!("{what}: the answer is not the Ray Jobs API's JSON ({e}): {}", cut(&text)), None)
            });
        }
        Err(http_error(&what, status, &text, retry_after))
    }

    /// The section's `request_timeout`, shortened to what is left of the caller's deadline.
    fn timeout(&self, ctx: &TaskContext) -> Duration {
        let left = ctx.deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(10)));
        left.map_or(self.config.request_timeout, |l| l.min(self.config.request_timeout))
    }
}

/// An id as one URL path segment (Ray's ids are `[A-Za-z0-9_-]`; anything else is escaped).
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn transport(what: &str, e: &reqwest::Error) -> AgentError {
    let kind = match (e.is_timeout(), e.is_connect()) {
        (true, _) => "timed out",
        (_, true) => "cannot connect to the Ray dashboard",
        _ => "request failed",
    };
    codes::unavailable(format!("{what}: {kind}: {e}"), None)
}

/// A Ray error answer, classified. Ray answers errors as text, often a Python traceback; the
/// dashboard wraps an error of its job agent as HTTP 500 "Request failed with status code 400: …",
/// which is classified by the inner status.
pub(crate) fn http_error(what: &str, status: reqwest::StatusCode, body: &str, retry_after: Option<Duration>) -> AgentError {
    const WRAPPED: &str = "Request failed with status code ";
    let inner = body
        .find(WRAPPED)
        .and_then(|i| body[i + WRAPPED.len()..].get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|c| (400..500).contains(c) && status.as_u16() >= 500);
    let code = inner.unwrap_or(status.as_u16());
    let detail = format!("{what}: HTTP {status}: {}", cut(&ray_message(body)));
    match code {
        401 | 403 => codes::denied(format!("{detail} (a secured dashboard: set [agents.ray] token or headers)")),
        404 => AgentError::not_found(codes::JOB_NOT_FOUND, detail),
        429 => codes::unavailable(format!("{detail} (throttled)"), retry_after),
        s if s >= 500 => codes::unavailable(detail, retry_after),
        _ => codes::rejected(detail),
    }
}

/// The line of an error body that names the problem: the last `…Error: …`/`…Exception: …` line of
/// a traceback, else the last line with words.
fn ray_message(body: &str) -> String {
    let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| l.chars().any(char::is_alphanumeric)).collect();
    let named = lines.iter().rev().find(|l| {
        l.split_once(": ").is_some_and(|(head, _)| head.ends_with("Error") || head.ends_with("Exception"))
    });
    named.or(lines.last()).map(|l| l.to_string()).unwrap_or_else(|| body.trim().to_owned())
}

/// At most [`MAX_BODY_IN_MESSAGE`] characters of `text`.
fn cut(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(MAX_BODY_IN_MESSAGE) {
        Some((end, _)) => format!("{}… ({} bytes)", &t[..end], t.len()),
        None => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorClass;

    #[test]
    fn http_errors_are_classified() {
        let s = |c: u16| reqwest::StatusCode::from_u16(c).unwrap();
        let body = "Traceback (most recent call last):\n  File \"x\"\nValueError: Job with submission_id tern-1 already exists.\n";
        let e = http_error("POST /api/jobs/", s(400), body, None);
        assert_eq!((e.code.as_ref(), e.is_retryable()), (codes::REQUEST_REJECTED, false));
        assert!(e.message.ends_with("ValueError: Job with submission_id tern-1 already exists."), "{}", e.message);
        // What Ray 2.60's dashboard answers for that: its job agent's 400 wrapped in a 500.
        let wrapped = format!("Traceback (most recent call last):\n  File \"job_head.py\"\nRuntimeError: Request failed with status code 400: {body}.\n");
        let e = http_error("POST /api/jobs/", s(500), &wrapped, None);
        assert_eq!((e.code.as_ref(), e.is_retryable()), (codes::REQUEST_REJECTED, false), "{}", e.message);
        assert!(e.message.ends_with("ValueError: Job with submission_id tern-1 already exists."), "{}", e.message);
        let e = http_error("w", s(500), "RuntimeError: Request failed with status code 503: busy.", None);
        assert!(e.is_retryable(), "an inner 5xx stays a server error");
        // status → (code, retryable)
        for (status, code, retryable) in [
            (401, codes::PERMISSION_DENIED, false),
            (403, codes::PERMISSION_DENIED, false),
            (404, codes::JOB_NOT_FOUND, false),
            (409, codes::REQUEST_REJECTED, false),
            (429, codes::UNAVAILABLE, true),
            (502, codes::UNAVAILABLE, true),
        ] {
            let e = http_error("w", s(status), "Job x does not exist", Some(Duration::from_secs(3)));
            assert_eq!((e.code.as_ref(), e.is_retryable()), (code, retryable), "{status}");
        }
        assert_eq!(http_error("w", s(404), "", None).class, ErrorClass::NotFound);
        assert_eq!(http_error("w", s(429), "", Some(Duration::from_secs(3))).retry_after, Some(Duration::from_secs(3)));
        let long = http_error("w", s(500), &"é".repeat(100_000), None).message;
        assert!(long.chars().count() < 2100 && long.ends_with("(200000 bytes)"), "{}", long.len());
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(path_segment("tern-0123abcd"), "tern-0123abcd");
        assert_eq!(path_segment("../stop?x"), "%2E%2E%2Fstop%3Fx");
    }
}
