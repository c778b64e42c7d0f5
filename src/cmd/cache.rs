//! `tern cache list` and `tern cache evict`: the task output cache in the state database.

use tern_core_engine::{codes, CacheEntry, Engine, Eviction};

use super::{engine, fail, output};
use crate::cli::StateArgs;
use crate::exit::Exit;

/// Keys are shown by their first 12 hex digits; `evict` takes any unique prefix this long or longer.
const SHORT: usize = 12;
const MIN_PREFIX: usize = 8;

async fn open(state: &StateArgs) -> Result<Engine, Exit> {
    engine::open_state(state).await.map_err(|e| fail(Exit::System, e))
}

pub async fn list(state: &StateArgs, json: bool) -> Exit {
    let engine = match open(state).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let entries = match engine.cache_entries().await {
        Ok(e) => e,
        Err(e) => return output::engine_error(&e),
    };
    if json {
        println!("{}", serde_json::to_value(&entries).unwrap_or_default());
        return Exit::Ok;
    }
    println!("{:<14} {:<32} {:<10} {:<28} SOURCE", "KEY", "TASK", "VERSION", "CREATED");
    for e in &entries {
        println!(
            "{:<14} {:<32} {:<10} {:<28} {}/{} [attempt {}]",
            e.key.get(..SHORT).unwrap_or(&e.key),
            e.task_name,
            e.cache_version,
            e.created_at,
            e.execution_id,
            e.node_id,
            e.attempt
        );
    }
    Exit::Ok
}

/// Full keys for the given keys or unique prefixes; the ones that match nothing (or more
/// than one entry) are errors.
fn resolve(given: &[String], entries: &[CacheEntry]) -> Result<Vec<String>, Vec<String>> {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    for g in given {
        let g = g.trim().to_ascii_lowercase();
        let matches: Vec<&CacheEntry> = if g.len() >= MIN_PREFIX {
            entries.iter().filter(|e| e.key.starts_with(&g)).collect()
        } else {
            entries.iter().filter(|e| e.key == g).collect()
        };
        match matches.as_slice() {
            [one] => keys.push(one.key.clone()),
            [] => errors.push(format!("[{}] no cache entry {g:?}", codes::CACHE_ENTRY_NOT_FOUND)),
            many => errors.push(format!(
                "[{}] {g:?} matches {} cache entries; give more of the key",
                codes::CACHE_ENTRY_NOT_FOUND,
                many.len()
            )),
        }
    }
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(errors)
    }
}

pub async fn evict(keys: &[String], task: Option<&str>, all: bool, state: &StateArgs) -> Exit {
    let engine = match open(state).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let which = if all {
        Eviction::All
    } else if let Some(task) = task {
        Eviction::Task(task.to_owned())
    } else {
        let entries = match engine.cache_entries().await {
            Ok(e) => e,
            Err(e) => return output::engine_error(&e),
        };
        match resolve(keys, &entries) {
            Ok(full) => Eviction::Keys(full),
            Err(errors) => {
                // Nothing is evicted when any key is wrong: a typo should not half-apply.
                for e in &errors {
                    eprintln!("error: {e}");
                }
                return Exit::Usage;
            }
        }
    };
    match engine.evict_cache(&which).await {
        Ok(evicted) => {
            let n = evicted.len();
            println!("evicted {n} cache entr{}", if n == 1 { "y" } else { "ies" });
            Exit::Ok
        }
        Err(e) => output::engine_error(&e),
    }
}
