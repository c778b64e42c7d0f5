//! Tern's typed DAG engine.
//!
//! A workflow is written in YAML ([`spec`], documented in `docs/workflows.md`), compiled
//! to one type-checked IR ([`compile`]), and executed node by node through the agent
//! protocol ([`router`], [`exec`]): every node is delegated to an agent via an
//! [`AgentClient`](tern_agent_api::client::AgentClient), in-process or over gRPC. State
//! (executions, node attempts, idempotency intents, resource_meta) lives in SQLite or
//! PostgreSQL ([`store`]), so an interrupted execution can be [recovered](Engine::recover) without
//! launching duplicate jobs.
//!
//! ```
//! use std::sync::Arc;
//! use tern_agent_api::prelude::*;
//! use tern_core_engine::{AgentRouter, Engine, EngineConfig, ExecutionPhase};
//!
//! /// A sync agent returning its inputs as outputs.
//! struct Echo;
//!
//! #[async_trait::async_trait]
//! impl SyncAgent for Echo {
//!     fn name(&self) -> &str { "echo" }
//!     fn task_categories(&self) -> Vec<TaskCategory> { vec![TaskCategory::new("echo", 0)] }
//!     async fn execute(&self, _ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
//!         Ok(TaskStatus::succeeded(Some(task.inputs)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut registry = AgentRegistry::new();
//! registry.register_sync(Arc::new(Echo))?;
//! let client = InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path().join("data")));
//! let engine = Engine::open(EngineConfig::new(dir.path(), AgentRouter::new(Arc::new(client)))).await?;
//!
//! let spec = Engine::parse_workflow(
//!     r#"
//! name: hello
//! inputs:
//!   x: {type: integer, default: 3}
//! nodes:
//!   - id: first
//!     task:
//!       type: echo
//!       interface: {inputs: {x: integer}, outputs: {x: integer}}
//!     inputs: {x: "${inputs.x}"}
//! outputs:
//!   y: ${first.x}
//! "#,
//!     "hello.yaml",
//! )?;
//! let workflow = engine.compile(&spec).await?;
//! let outcome = engine.run(&workflow, vec![("x".into(), "7".into())], None).await?;
//! assert_eq!(outcome.phase, ExecutionPhase::Succeeded);
//! assert!(outcome.outputs.literals.contains_key("y"));
//! // Everything is recorded.
//! let detail = engine.execution(&outcome.id).await?;
//! assert_eq!(detail.attempts.len(), 1);
//! # Ok(())
//! # }
//! ```
pub mod binding;
mod cache;
pub mod compile;
pub mod config;
pub mod engine;
pub mod error;
pub mod exec;
mod lease;
pub mod router;
pub mod spec;
pub mod store;

pub use compile::{CompileError, CompileErrors, CompiledWorkflow, ExecutionMode};
pub use config::{Backoff, EngineConfig, PollConfig, RetryConfig};
pub use engine::{Engine, ExecutionDetail, ExecutionOutcome};
pub use error::{codes, EngineError, InputError, InputErrors};
pub use exec::events::ExecutionEvent;
pub use exec::inputs::split_input;
pub use exec::{CacheKey, CachePolicy};
pub use router::{AgentRouter, Served, ServedTypes};
pub use spec::{FailurePolicy, ParseError, WorkflowSpec};
pub use store::{
    AttemptPhase, CacheEntry, CacheStatus, Eviction, ExecutionPhase, ExecutionRecord, LeaseGrant, LeaseOutcome,
    NodeAttemptRecord, RecordedError, StateLocation, StateStore, StoreError,
};
