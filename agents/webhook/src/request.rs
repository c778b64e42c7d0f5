//! The HTTP call a webhook task makes: read from the expanded `custom` config, sent with
//! the shared reqwest client the way flytekit sends it with httpx.
use std::time::Duration;

use serde_json::Value;
use tern_agent_api::prelude::AgentError;

use crate::codes;
use crate::config::WebhookConfig;
use crate::python::{python_str, python_truthy};

/// flytekit's default when `timeout_sec` is absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One webhook invocation, fully rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookCall {
    pub url: String,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    /// Query parameters for GET, the JSON body for POST (`null`: no body).
    pub data: Value,
    pub show_data: bool,
    pub show_url: bool,
    pub timeout: Duration,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookResponse {
    pub status: u16,
    pub text: String,
}

fn bad_config(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(codes::BAD_CONFIG, message)
}

impl WebhookCall {
    /// Reads the call from `custom` after placeholder expansion.
    pub fn from_custom(custom: &Value) -> Result<Self, AgentError> {
        let get = |key: &str| custom.get(key).unwrap_or(&Value::Null);
        let url = match get("url") {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::String(_) | Value::Null => return Err(bad_config("the webhook task has no url (custom.url)")),
            other => return Err(bad_config(format!("custom.url must be text, got {}", python_str(other)))),
        };
        reqwest::Url::parse(&url).map_err(|e| bad_config(format!("custom.url is not a valid URL: {e}")))?;
        // flytekit: `str(method).upper()`.
        let method = match python_str(get("method")).to_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            other => return Err(bad_config(format!("Method should be either GET or POST. Got {other}"))),
        };
        let headers = match get("headers") {
            Value::Null => Vec::new(),
            Value::Object(map) => map
                .iter()
                .map(|(name, value)| match value {
                    Value::String(v) => Ok((name.clone(), v.clone())),
                    other => Err(bad_config(format!(
                        "header {name:?} must be text, got {}; quote the placeholder inside text, e.g. \"n={{inputs.n}}\"",
                        python_str(other)
                    ))),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad_config("custom.headers must be a mapping of header name to text")),
        };
        let data = get("data").clone();
        if method == Method::Get && !matches!(data, Value::Null | Value::Object(_)) {
            return Err(bad_config("custom.data must be a mapping for GET (it becomes the query parameters)"));
        }
        let timeout = match custom.get("timeout_sec") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT,
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|s| *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| bad_config(format!("custom.timeout_sec must be a positive number of seconds, got {n}")))?,
            Some(other) => {
                return Err(bad_config(format!("custom.timeout_sec must be a number of seconds, got {}", python_str(other))))
            }
        };
        Ok(Self {
            url,
            method,
            headers,
            data,
            show_data: python_truthy(get("show_data")),
            show_url: python_truthy(get("show_url")),
            timeout,
        })
    }

    /// Scheme and host only: URLs of webhooks often carry tokens, so messages never
    /// show the path or query.
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.url)
            .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("?")))
            .unwrap_or_else(|_| "the webhook host".into())
    }

    /// Refuses a host the gateway's `allowed_hosts` does not list.
    pub fn check_host(&self, config: &WebhookConfig) -> Result<(), AgentError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| bad_config(format!("custom.url is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_config(format!("custom.url must be http or https, got {}:", url.scheme())));
        }
        let host = url.host_str().unwrap_or_default();
        if config.allows(host, url.port_or_known_default()) {
            return Ok(());
        }
        Err(AgentError::permission_denied(
            codes::HOST_NOT_ALLOWED,
            format!(
                "webhook host {} is not in this gateway's allowed_hosts ([agents.webhook]); ask its operator to add it",
                self.host()
            ),
        ))
    }

    /// Sends the request; `timeout` bounds connecting and reading the whole response, and
    /// a body longer than `max_body` bytes fails the call.
    pub async fn send(&self, client: &reqwest::Client, timeout: Duration, max_body: u64) -> Result<WebhookResponse, AgentError> {
        let failed = |e: reqwest::Error| {
            AgentError::user(codes::REQUEST_FAILED, format!("webhook request to {} failed: {}", self.host(), chain(e)))
        };
        let mut request = match self.method {
            Method::Get => client.get(&self.url).query(&self.query_pairs()),
            Method::Post => client.post(&self.url),
        }
        .timeout(timeout);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if self.method == Method::Post && !self.data.is_null() {
            // Like httpx's `json=`: set the content type only if the caller did not.
            if !self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            request = request.body(serde_json::to_vec(&self.data).unwrap_or_default());
        }
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let too_big = || {
            AgentError::user(
                codes::RESPONSE_TOO_LARGE,
                format!("the response of {} is larger than max_response_bytes = {max_body}", self.host()),
            )
        };
        if response.content_length().is_some_and(|n| n > max_body) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() as u64 + chunk.len() as u64 > max_body {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(WebhookResponse { status, text: String::from_utf8_lossy(&body).into_owned() })
    }

    /// httpx's query encoding: lists repeat the key, `True` → `true`, `None` → empty.
    fn query_pairs(&self) -> Vec<(String, String)> {
        let Value::Object(map) = &self.data else { return Vec::new() };
        let mut pairs = Vec::new();
        for (key, value) in map {
            match value {
                Value::Array(items) => pairs.extend(items.iter().map(|v| (key.clone(), query_value(v)))),
                v => pairs.push((key.clone(), query_value(v))),
            }
        }
        pairs
    }
}

fn query_value(v: &Value) -> String {
    match v {
        Value::Bool(true) => "true".into(),
        Value::Bool(false) => "false".into(),
        Value::Null => String::new(),
        other => python_str(other),
    }
}

/// The error and its causes, without the URL (it may hold a token).
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_flytekit_custom() {
        let call = WebhookCall::from_custom(&json!({
            "url": "http://h/x", "method": "get", "headers": {"A": "b"}, "data": {"q": [1, true, null]},
            "show_data": true, "show_url": 0, "timeout_sec": 2.5,
        }))
        .unwrap();
        assert_eq!(call.method, Method::Get);
        assert_eq!(call.timeout, Duration::from_millis(2500));
        assert!(call.show_data && !call.show_url);
        assert_eq!(
            call.query_pairs(),
            vec![("q".into(), "1".into()), ("q".into(), "true".into()), ("q".into(), String::new())]
        );
        let call = WebhookCall::from_custom(&json!({"url": "http://h/x", "method": "POST"})).unwrap();
        assert_eq!(call.timeout, DEFAULT_TIMEOUT);
        assert_eq!(call.data, Value::Null);
    }

    #[test]
    fn rejects_bad_config_naming_the_problem() {
        let err = |v: Value| WebhookCall::from_custom(&v).unwrap_err();
        let e = err(json!({"url": "http://h", "method": "PUT"}));
        assert_eq!(e.code, codes::BAD_CONFIG);
        assert!(e.message.contains("PUT"), "{e}");
        assert!(err(json!({"method": "GET"})).message.contains("no url"));
        assert!(err(json!({"url": "not a url", "method": "GET"})).message.contains("not a valid URL"));
        assert!(err(json!({"url": "http://h", "method": "GET", "headers": {"X": 1.0}})).message.contains("\"X\""));
        assert!(err(json!({"url": "http://h", "method": "GET", "timeout_sec": -1})).message.contains("timeout_sec"));
        assert!(err(json!({"url": "http://h", "method": "GET", "data": [1]})).message.contains("GET"));
    }

    #[test]
    fn host_hides_path_and_query() {
        let call = WebhookCall::from_custom(&json!({"url": "https://hooks.example.com/T0/B0/SECRET?t=1", "method": "POST"}))
            .unwrap();
        assert_eq!(call.host(), "https://hooks.example.com");
    }
}
