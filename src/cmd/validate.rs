//! `tern validate`: parse and type-check a workflow against the reachable agents.
use std::path::Path;

use tern_core_engine::Engine;

use super::{engine, fail, output};
use crate::cli::TargetArgs;
use crate::exit::Exit;

pub async fn run(file: &Path, args: &TargetArgs, json: bool) -> Exit {
    let spec = match Engine::load_workflow(file) {
        Ok(s) => s,
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({"valid": false, "errors": [{"code": e.code(), "message": e.to_string()}]}));
                return Exit::Usage;
            }
            return output::engine_error(&e);
        }
    };
    let engine = match engine::open(args, 1).await {
        Ok(e) => e,
        Err(e) => return fail(Exit::System, e),
    };
    match engine.compile(&spec).await {
        Ok(wf) => {
            if json {
                println!("{}", serde_json::json!({"valid": true, "workflow": wf.summary_json()}));
            } else {
                println!("{}: valid", file.display());
            }
            Exit::Ok
        }
        Err(errors) => {
            if json {
                let list: Vec<_> = errors
                    .errors
                    .iter()
                    .map(|e| serde_json::json!({"code": e.code, "message": e.to_string()}))
                    .collect();
                println!("{}", serde_json::json!({"valid": false, "errors": list}));
            } else {
                eprintln!("error: {} does not validate:\n{errors}", file.display());
            }
            Exit::Usage
        }
    }
}
