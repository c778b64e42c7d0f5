//! `tern executions` and `tern show`: what ran, and how it ended.
use super::{engine, fail, output};
use crate::cli::StateArgs;
use crate::exit::Exit;

pub async fn list(state: &StateArgs, json: bool) -> Exit {
    let engine = match engine::open_state(state).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    let records = match engine.executions().await {
        Ok(r) => r,
        Err(e) => return output::engine_error(&e),
    };
    if json {
        println!("{}", serde_json::to_value(&records).unwrap_or_default());
        return Exit::Ok;
    }
    println!("{:<22} {:<24} {:<10} {:<26} ERROR", "ID", "WORKFLOW", "PHASE", "CREATED");
    for r in records {
        let err = match (&r.failed_node, &r.error) {
            (Some(n), Some(e)) => format!("{n}: {e}"),
            (None, Some(e)) => e.to_string(),
            _ => String::new(),
        };
        println!("{:<22} {:<24} {:<10} {:<26} {err}", r.id, r.workflow_name, r.phase.as_str(), r.created_at);
    }
    Exit::Ok
}

pub async fn show(id: &str, state: &StateArgs, json: bool) -> Exit {
    let engine = match engine::open_state(state).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    let detail = match engine.execution(id).await {
        Ok(d) => d,
        Err(e) => return output::engine_error(&e),
    };
    if json {
        println!("{}", serde_json::to_value(&detail).unwrap_or_default());
        return Exit::Ok;
    }
    let x = &detail.execution;
    println!("execution {}  workflow {}  phase {}", x.id, x.workflow_name, x.phase.as_str());
    println!("created {}  finished {}", x.created_at, x.finished_at.as_deref().unwrap_or("-"));
    if let Some(e) = &x.error {
        println!("failed node {}: {e}", x.failed_node.as_deref().unwrap_or("-"));
    }
    if let Some(uri) = &x.outputs_uri {
        println!("outputs {uri}");
    }
    println!();
    println!("{:<20} {:<8} {:<10} {:<10} {:<28} DETAIL", "NODE", "ATTEMPT", "PHASE", "TASK TYPE", "AGENT");
    for a in &detail.attempts {
        let mut detail = a.error.as_ref().map(ToString::to_string).unwrap_or_else(|| {
            if a.outputs.is_some() {
                "outputs inline in the state".to_owned()
            } else {
                a.output_uri.clone()
            }
        });
        if let Some(status) = a.cache_status {
            let key = a.cache_key.as_deref().unwrap_or_default();
            detail = format!("cache {status} {} {detail}", key.get(..12).unwrap_or(key));
        }
        println!(
            "{:<20} {:<8} {:<10} {:<10} {:<28} {detail}",
            a.node_id,
            a.attempt,
            a.phase.as_str(),
            a.task_type,
            a.agent_endpoint
        );
    }
    Exit::Ok
}
