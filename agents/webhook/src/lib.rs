//! The `webhook` agent (task type `webhook`, version 0, **sync**): calls an HTTP endpoint
//! once, with exactly the semantics of flytekit 1.16.31's built-in webhook connector, so a
//! `flytekit.extras.webhook.WebhookTask` runs unchanged on Tern.
//!
//! # Template conventions
//!
//! `TaskTemplate.custom` keys (what `WebhookTask.get_custom` writes):
//!
//! | key | meaning |
//! |---|---|
//! | `url` | the endpoint |
//! | `method` | `GET` or `POST` (case-insensitive); anything else fails the task naming it |
//! | `headers` | mapping of header name → text |
//! | `data` | GET: query parameters (lists repeat the key, `true`/`false`, `None` → empty); POST: the JSON body |
//! | `show_data` | add the sent `data` to the output as `input_data` |
//! | `show_url` | add the final URL to the output as `url` |
//! | `timeout_sec` | seconds for connecting and reading the response (default 10) |
//!
//! Every string anywhere in `custom` may contain placeholders `{inputs.NAME}` or
//! `{inputs.NAME.key}`: a string that is exactly one placeholder becomes the input's
//! value with its type (`"{inputs.n}"` → `3`); otherwise the value's Python `str()` is
//! spliced in (`True`, `None`, `1.0`, `['a', 'b']`). Inputs are first rendered the way
//! flytekit renders them for humans: files and dataframes as their URI, datetimes as ISO
//! 8601 text, durations as seconds, dicts (msgpack) as their JSON text. An unknown key
//! fails the task naming the placeholder; placeholders without a dot are left as is.
//!
//! # Result
//!
//! - HTTP 200 → SUCCEEDED, message `Webhook was successfully invoked!`, one output `info`:
//!   `{"status_code": 200, "response_data": <body text>}` (+ `input_data`, + `url`),
//!   encoded as flytekit encodes a `dict`: a msgpack binary literal.
//! - Any other status → FAILED, `Webhook failed with status code <status>, response: <text>`.
//! - Bad config, unknown placeholders and connection errors or timeouts → FAILED with
//!   the reason (permanent, as in flytekit: the task's own retries apply).
//!
//! Headers are never logged, and failure messages name only the URL's scheme and host
//! (webhook URLs often carry tokens).
//!
//! Known differences from flytekit, on inputs flytekit cannot handle either: a
//! non-msgpack binary input renders as base64 *text* (flytekit: Python `bytes`, which then
//! fails to serialize), an offloaded literal as its URI, and the request timeout is a
//! total one (httpx applies it per phase).
use std::sync::Arc;

use tern_agent_api::prelude::{AgentError, SyncAgent};

pub mod agent;
pub mod config;
pub mod inputs;
pub mod placeholders;
pub mod python;
pub mod request;

pub use agent::{WebhookAgent, TASK_TYPE};
pub use config::{WebhookConfig, WebhookFactory};

/// Stable error codes of this agent (documented in `docs/errors.md`).
pub mod codes {
    /// The task's `custom` config is unusable: no url, a method other than GET/POST,
    /// non-text headers, a bad timeout.
    pub const BAD_CONFIG: &str = "TERN-W001";
    /// A `{inputs...}` placeholder names a key the inputs do not have.
    pub const UNKNOWN_PLACEHOLDER: &str = "TERN-W002";
    /// The request could not be completed: connection refused, DNS, TLS, timeout.
    pub const REQUEST_FAILED: &str = "TERN-W003";
    /// The endpoint answered with a status other than 200.
    pub const HTTP_STATUS: &str = "TERN-W004";
    /// The URL's host is not in the gateway's `allowed_hosts`.
    pub const HOST_NOT_ALLOWED: &str = "TERN-W005";
    /// The response body is larger than `max_response_bytes`.
    pub const RESPONSE_TOO_LARGE: &str = "TERN-W006";
}

/// The webhook agent with default settings (any host), ready to register.
///
/// # Panics
/// If the TLS backend cannot start (then no HTTP client can be built at all); use
/// [`agent_with`] to get that as an error.
pub fn agent() -> Arc<dyn SyncAgent> {
    match agent_with(WebhookConfig::default()) {
        Ok(agent) => agent,
        Err(e) => panic!("{e}"),
    }
}

/// The webhook agent with operator settings.
pub fn agent_with(config: WebhookConfig) -> Result<Arc<dyn SyncAgent>, AgentError> {
    Ok(Arc::new(WebhookAgent::new(config)?))
}
