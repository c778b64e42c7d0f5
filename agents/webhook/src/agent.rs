//! The `webhook` sync agent: expand placeholders, send the request, report the result
//! in flytekit's words.
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tern_agent_api::prelude::*;
use tern_type_transformers::{FlyteType, JsonDict};
use tern_type_transformers::render::struct_to_json;

use crate::codes;
use crate::config::WebhookConfig;
use crate::inputs::placeholder_scope;
use crate::placeholders::expand;
use crate::request::WebhookCall;

pub const TASK_TYPE: &str = "webhook";

/// Response bodies longer than this are cut in failure messages: the message ends up
/// in the caller's state store (propeller keeps it in an etcd-backed CRD).
const MAX_MESSAGE_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub struct WebhookAgent {
    config: WebhookConfig,
    /// Its own client: the connect timeout is this agent's setting. Redirects are not
    /// followed, like httpx: a 3xx is the answer (and following it could bypass the
    /// allowlist or carry credentials elsewhere).
    http: reqwest::Client,
}

impl WebhookAgent {
    pub fn new(config: WebhookConfig) -> Result<Self, AgentError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| AgentError::internal(tern_agent_api::error::codes::INTERNAL, format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { config, http })
    }
}

#[async_trait]
impl SyncAgent for WebhookAgent {
    fn name(&self) -> &str {
        TASK_TYPE
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    /// Every failure is reported in-band as a FAILED status (as flytekit does), with the
    /// error's code in `agent_error` and flytekit's message text.
    async fn execute(&self, ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        Ok(match invoke(self, ctx, &task).await {
            Ok(status) => status,
            Err(error) => {
                let message = error.message.clone();
                TaskStatus::failed(error).with_message(message)
            }
        })
    }
}

async fn invoke(agent: &WebhookAgent, ctx: &TaskContext, task: &TaskRequest) -> Result<TaskStatus, AgentError> {
    let custom = task.template.custom.as_ref().map(struct_to_json).ok_or_else(|| {
        AgentError::invalid_argument(codes::BAD_CONFIG, "the webhook task has no custom config (url, method, ...)")
    })?;
    let expanded = expand(&Value::Object(custom), &placeholder_scope(&task.inputs))
        .map_err(|e| AgentError::invalid_argument(codes::UNKNOWN_PLACEHOLDER, e.to_string()))?;
    let call = WebhookCall::from_custom(&expanded)?;
    call.check_host(&agent.config)?;
    let timeout = within_deadline(call.timeout.min(agent.config.max_timeout), ctx.deadline);
    let response = call.send(&agent.http, timeout, agent.config.max_response_bytes).await?;
    tracing::debug!(host = %call.host(), status = response.status, "webhook invoked");
    if response.status != 200 {
        return Err(AgentError::user(
            codes::HTTP_STATUS,
            format!("Webhook failed with status code {}, response: {}", response.status, cut(&response.text)),
        ));
    }
    let mut info = serde_json::Map::new();
    info.insert("status_code".into(), response.status.into());
    info.insert("response_data".into(), Value::String(response.text));
    if call.show_data {
        info.insert("input_data".into(), call.data.clone());
    }
    if call.show_url {
        info.insert("url".into(), Value::String(call.url.clone()));
    }
    // `info` is a Python dict in flytekit: the msgpack literal its dict transformer writes.
    let info = JsonDict(info).to_literal().map_err(AgentError::from)?;
    let outputs = core::LiteralMap { literals: [("info".to_owned(), info)].into() };
    Ok(TaskStatus::succeeded(Some(outputs)).with_message("Webhook was successfully invoked!"))
}

/// The request timeout, shortened to the caller's deadline when that comes first.
fn within_deadline(timeout: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => timeout.min(d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))),
        None => timeout,
    }
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BODY {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end)
}
