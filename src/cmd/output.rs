//! Rendering outcomes for people and for machines.
use std::collections::BTreeMap;

use tern_agent_api::core;
use tern_agent_api::datastore::DataStore;
use tern_core_engine::{EngineError, ExecutionEvent, ExecutionOutcome, ExecutionPhase};
use tern_type_transformers::offload::{contains_offloaded, load_map};
use tern_type_transformers::render::literal_to_json;

use crate::exit::Exit;

pub fn outputs_json(outputs: &core::LiteralMap) -> serde_json::Value {
    let sorted: BTreeMap<_, _> = outputs.literals.iter().map(|(k, v)| (k.clone(), literal_to_json(v))).collect();
    serde_json::to_value(sorted).unwrap_or_default()
}

/// The outcome with its offloaded outputs loaded from `store`, for rendering. When loading
/// fails the outputs are left as they are (rendered as offloaded literals) and a warning says why.
pub async fn load_offloaded(mut outcome: ExecutionOutcome, store: &dyn DataStore) -> ExecutionOutcome {
    if !outcome.outputs.literals.values().any(contains_offloaded) {
        return outcome;
    }
    match load_map(outcome.outputs.clone(), store).await {
        Ok(loaded) => outcome.outputs = loaded,
        Err(e) => eprintln!("warning: cannot load offloaded outputs: {e}"),
    }
    outcome
}

/// Prints the outcome; returns the exit code.
pub fn print_outcome(outcome: &ExecutionOutcome, json: bool) -> Exit {
    let failed = outcome.phase != ExecutionPhase::Succeeded;
    if json {
        let mut v = serde_json::json!({
            "execution_id": outcome.id,
            "phase": outcome.phase.as_str(),
            "outputs": outputs_json(&outcome.outputs),
        });
        if let Some(node) = &outcome.failed_node {
            v["failed_node"] = node.clone().into();
        }
        if let Some(e) = &outcome.error {
            v["error"] = serde_json::json!({"code": e.code, "message": e.message});
        }
        println!("{v}");
    } else if !failed {
        println!("execution {} SUCCEEDED", outcome.id);
        let outputs = outputs_json(&outcome.outputs);
        if let Some(map) = outputs.as_object() {
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                println!("  {k} = {text}");
            }
        }
    }
    if outcome.phase == ExecutionPhase::Aborted {
        eprintln!("execution {} ABORTED: running jobs were deleted", outcome.id);
        eprintln!("       inspect it with: tern show {}", outcome.id);
        return Exit::ExecutionFailed;
    }
    if failed {
        let node = outcome.failed_node.as_deref().unwrap_or("<none>");
        let node = if outcome.failed_node.is_none() { "(the workflow)".to_owned() } else { format!("node {node}") };
        match &outcome.error {
            Some(e) => eprintln!("error: execution {} {}: {node} failed: {e}", outcome.id, outcome.phase.as_str()),
            None => eprintln!("error: execution {} {}: {node} failed", outcome.id, outcome.phase.as_str()),
        }
        eprintln!("       inspect it with: tern show {}", outcome.id);
        return Exit::ExecutionFailed;
    }
    Exit::Ok
}

/// Exit code and message for an engine error that stopped a command.
pub fn engine_error(e: &EngineError) -> Exit {
    eprintln!("error: {e}");
    if e.is_user_error() {
        Exit::Usage
    } else {
        Exit::System
    }
}

/// Renders live progress on stderr until the sender side closes.
/// The id of the execution a progress stream announced (`Started`), once it did.
#[derive(Debug, Clone, Default)]
pub struct StartedId(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl StartedId {
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

pub fn spawn_progress(
    json: bool,
) -> (tokio::sync::mpsc::Sender<ExecutionEvent>, tokio::task::JoinHandle<()>, StartedId) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExecutionEvent>(256);
    let started = std::time::Instant::now();
    let id = StartedId::default();
    let seen = id.clone();
    let task = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if let ExecutionEvent::Started { execution_id, .. } = &event {
                if let Ok(mut g) = seen.0.lock() {
                    *g = Some(execution_id.clone());
                }
            }
            if !json {
                eprintln!("[{:>7.2}s] {event}", started.elapsed().as_secs_f64());
            }
        }
    });
    (tx, task, id)
}
