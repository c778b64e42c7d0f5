//! `tern run` and `tern recover`: execute (or resume) a workflow with live progress.
use std::path::Path;

use tern_core_engine::{split_input, Engine};

use super::{engine, fail, output};
use crate::cli::TargetArgs;
use crate::exit::Exit;

pub async fn run(file: &Path, raw_inputs: &[String], args: &TargetArgs, json: bool, max_parallel: usize) -> Exit {
    let mut inputs = Vec::new();
    for raw in raw_inputs {
        match split_input(raw) {
            Some(kv) => inputs.push(kv),
            None => return fail(Exit::Usage, format!("[TERN-E304] --input expects NAME=VALUE, got {raw:?}")),
        }
    }
    let spec = match Engine::load_workflow(file) {
        Ok(s) => s,
        Err(e) => return output::engine_error(&e),
    };
    let (engine, store) = match engine::open_with_store(args, max_parallel).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    let workflow = match engine.compile(&spec).await {
        Ok(w) => w,
        Err(errors) => {
            eprintln!("error: {} does not validate:\n{errors}", file.display());
            return Exit::Usage;
        }
    };
    let (tx, progress, started) = output::spawn_progress(json);
    let result = interruptible(engine.run(&workflow, inputs, Some(tx))).await;
    finish(&engine, &*store, result, progress, started, json).await
}

/// Runs `driving` until it ends or Ctrl-C: then it is dropped (the engine stops driving;
/// running jobs are left alone) — `None`.
async fn interruptible<T>(driving: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        r = driving => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    }
}

async fn finish(
    engine: &Engine,
    store: &dyn tern_agent_api::datastore::DataStore,
    result: Option<Result<tern_core_engine::ExecutionOutcome, tern_core_engine::EngineError>>,
    progress: tokio::task::JoinHandle<()>,
    started: output::StartedId,
    json: bool,
) -> Exit {
    let Some(result) = result else {
        progress.abort();
        let id = started.get();
        match &id {
            Some(id) => {
                let _ = engine.detach(id).await;
                eprintln!(
                    "interrupted: detached from execution {id}; its running jobs keep running.\n  \
                     resume it: tern recover {id}\n  abort it:  tern abort {id}"
                );
            }
            None => eprintln!("interrupted before the execution started"),
        }
        return Exit::Interrupted;
    };
    let _ = progress.await;
    match result {
        Ok(outcome) => output::print_outcome(&output::load_offloaded(outcome, store).await, json),
        Err(e) => output::engine_error(&e),
    }
}

pub async fn recover(id: &str, args: &TargetArgs, json: bool) -> Exit {
    let (engine, store) = match engine::open_with_store(args, 8).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    let (tx, progress, started) = output::spawn_progress(json);
    let result = interruptible(engine.recover(id, Some(tx))).await;
    finish(&engine, &*store, result, progress, started, json).await
}

pub async fn abort(id: &str, args: &TargetArgs, json: bool) -> Exit {
    let (engine, store) = match engine::open_with_store(args, 8).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    let (tx, progress, started) = output::spawn_progress(json);
    let result = interruptible(engine.abort(id, Some(tx))).await;
    finish(&engine, &*store, result, progress, started, json).await
}
