//! An example third-party Tern agent library, loaded by the gateway as a plugin.
//!
//! Two agents, written exactly as in-tree agents are (an `AgentFactory` with a typed config
//! and an `AsyncAgent`/`SyncAgent` impl), exported with one macro:
//!
//! - `greeter` (`[agents.greeter]`), async, task type `greet`: input `name: string`, output
//!   `greeting: string`. `create` writes the greeting to the task's output prefix in the
//!   gateway's data store, `get` reads it back, `delete` leaves a marker so `get` reports
//!   ABORTED. An optional `api_token` secret reference is resolved on every create, as an
//!   agent calling an authenticated backend would.
//! - `wordcount` (`[agents.wordcount]`), sync, task type `wordcount`: input `text: string`,
//!   output `words: integer`. With `allow_local_files = true` a `text` of the form
//!   `file:/abs/path` counts the words of that file on the gateway's host, which makes it
//!   an agent that touches local files: `tern serve` then requires `enabled = true`.
//!
//! For tests, a `name` or `text` equal to `"panic"` makes the agent panic, and
//! `panic_on_build = true` makes building `greeter` panic: the gateway must report each as
//! an error and go on serving.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;
use tern_agent_api::secrets::SecretRef;

mod literals;
use literals::{int_literal, string_input, string_literal};

/// Stable error codes of this plugin (a third party picks its own prefix).
pub mod codes {
    pub const BAD_INPUT: &str = "EXAMPLE-001";
    pub const NO_GREETING: &str = "EXAMPLE-002";
}

// ---------------------------------------------------------------------------------------
// greeter (async)

/// `[agents.greeter]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GreeterConfig {
    /// The word before the name.
    pub greeting: String,
    /// Upper-case the whole greeting.
    pub shout: bool,
    /// A secret reference (`env:NAME`, `file:PATH`) resolved on every create.
    pub api_token: Option<SecretRef>,
    /// Test hook: panic while the gateway builds the agent.
    pub panic_on_build: bool,
}

impl Default for GreeterConfig {
    fn default() -> Self {
        Self { greeting: "Hello".into(), shout: false, api_token: None, panic_on_build: false }
    }
}

pub struct GreeterFactory;

impl AgentFactory for GreeterFactory {
    type Config = GreeterConfig;
    const NAME: &'static str = "greeter";
    const DESCRIPTION: &'static str = "greets by name (example plugin)";

    fn build(config: GreeterConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        if config.panic_on_build {
            panic!("greeter was asked to panic while being built");
        }
        if config.greeting.trim().is_empty() {
            return Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::BAD_AGENT_CONFIG,
                "greeting must not be empty",
            ));
        }
        Ok(AgentHandle::Async(std::sync::Arc::new(Greeter { config })))
    }
}

struct Greeter {
    config: GreeterConfig,
}

#[derive(Serialize, Deserialize)]
struct GreetHandle {
    /// Where the greeting was written.
    uri: String,
}

fn cancelled_marker(uri: &str) -> String {
    format!("{uri}.cancelled")
}

/// Every state the greeter's "backend" (an object in the gateway's data store) can be in,
/// and the phase each maps to. A state missing from the table would be reported as the
/// explicit retryable failure TERN-B001, never as a task left running.
static GREETING_STATES: StateTable = StateTable::detailed(
    "greeter",
    &[
        BackendState::new("WRITTEN", Phase::Succeeded).meaning("the greeting is in the data store"),
        BackendState::new("CANCELLED", Phase::Aborted).meaning("deleted before it was read"),
        BackendState::new("GONE", Phase::Failed).meaning("the greeting was removed from the data store").code(codes::NO_GREETING),
    ],
);

#[async_trait]
impl AsyncAgent for Greeter {
    fn name(&self) -> &str {
        "greeter"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("greet", 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        if let Some(token) = &self.config.api_token {
            // Resolved by the gateway's secret provider, when needed; never logged.
            let _token = ctx.secrets().resolve(token)?;
        }
        let name = string_input(&task.inputs, "name")?;
        if name == "panic" {
            panic!("greeter was asked to panic");
        }
        let mut greeting = format!("{}, {name}!", self.config.greeting);
        if self.config.shout {
            greeting = greeting.to_uppercase();
        }
        if ctx.output_prefix.is_empty() {
            return Err(AgentError::invalid_argument(codes::BAD_INPUT, "greet needs an output_prefix to write to"));
        }
        // Idempotent: the same attempt writes the same object.
        let uri = join_uri(&ctx.output_prefix, "greeting.txt");
        tracing::info!(%uri, "greeting {name}");
        ctx.data_store().write(&uri, greeting.into_bytes().into()).await?;
        ResourceMeta::encode(&GreetHandle { uri })
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle: GreetHandle = meta.decode()?;
        if ctx.data_store().exists(&cancelled_marker(&handle.uri)).await? {
            return Ok(GREETING_STATES.classify("CANCELLED"));
        }
        match ctx.data_store().read(&handle.uri).await {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let outputs = core::LiteralMap { literals: [("greeting".to_owned(), string_literal(text))].into() };
                Ok(TaskStatus { outputs: Some(outputs), ..GREETING_STATES.classify("WRITTEN") })
            }
            Err(tern_agent_api::datastore::DataStoreError::NotFound { uri }) => {
                Ok(GREETING_STATES.classify_with("GONE", &format!("nothing at {uri}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&GREETING_STATES)
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle: GreetHandle = meta.decode()?;
        ctx.data_store().write(&cancelled_marker(&handle.uri), b"cancelled".to_vec().into()).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// wordcount (sync)

/// `[agents.wordcount]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WordCountConfig {
    /// Count only words at least this long.
    pub min_length: usize,
    /// Accept `file:/abs/path` as `text` and read that file on the gateway's host.
    pub allow_local_files: bool,
}

pub struct WordCountFactory;

impl AgentFactory for WordCountFactory {
    type Config = WordCountConfig;
    const NAME: &'static str = "wordcount";
    const DESCRIPTION: &'static str = "counts words (example plugin)";

    fn exposure(config: &WordCountConfig) -> Exposure {
        if config.allow_local_files {
            Exposure::LocalFiles
        } else {
            Exposure::Safe
        }
    }

    fn build(config: WordCountConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        Ok(AgentHandle::Sync(std::sync::Arc::new(WordCount { config })))
    }
}

struct WordCount {
    config: WordCountConfig,
}

#[async_trait]
impl SyncAgent for WordCount {
    fn name(&self) -> &str {
        "wordcount"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("wordcount", 0)]
    }

    async fn execute(&self, _ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        let mut text = string_input(&task.inputs, "text")?;
        if text == "panic" {
            panic!("wordcount was asked to panic");
        }
        if let Some(path) = text.strip_prefix("file:").filter(|_| self.config.allow_local_files) {
            text = std::fs::read_to_string(path)
                .map_err(|e| AgentError::user(codes::BAD_INPUT, format!("cannot read {path}: {e}")))?;
        }
        let words = text.split_whitespace().filter(|w| w.chars().count() >= self.config.min_length).count();
        let outputs = core::LiteralMap { literals: [("words".to_owned(), int_literal(words as i64))].into() };
        Ok(TaskStatus::succeeded(Some(outputs)))
    }
}

// One library, two agents, one line.
tern_agent_api::export_agent!(GreeterFactory, WordCountFactory);
