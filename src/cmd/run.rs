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
    let (tx, progress) = output::spawn_progress(json);
    let result = engine.run(&workflow, inputs, Some(tx)).await;
    let _ = progress.await;
    match result {
        Ok(outcome) => output::print_outcome(&output::load_offloaded(outcome, &*store).await, json),
        Err(e) => output::engine_error(&e),
    }
}

pub async fn recover(id: &str, args: &TargetArgs, json: bool) -> Exit {
    let (engine, store) = match engine::open_with_store(args, 8).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    let (tx, progress) = output::spawn_progress(json);
    let result = engine.recover(id, Some(tx)).await;
    let _ = progress.await;
    match result {
        Ok(outcome) => output::print_outcome(&output::load_offloaded(outcome, &*store).await, json),
        Err(e) => output::engine_error(&e),
    }
}
