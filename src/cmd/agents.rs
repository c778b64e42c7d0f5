//! `tern agents`: what task types are reachable, and where.
use super::{fail, target};
use crate::cli::TargetArgs;
use crate::exit::Exit;

pub async fn run(args: &TargetArgs, json: bool) -> Exit {
    let targets = match target::build(args) {
        Ok(t) => t,
        Err(e) => return fail(Exit::Usage, e),
    };
    let mut clients = vec![targets.default.clone()];
    clients.extend(targets.routes.values().cloned());
    let mut rows = Vec::new();
    for client in clients {
        match client.list_agents().await {
            Ok(agents) => {
                for a in agents {
                    for c in &a.supported_task_categories {
                        rows.push((a.name.clone(), c.name.clone(), c.version, a.is_sync, client.describe()));
                    }
                }
            }
            Err(e) => return fail(Exit::System, e),
        }
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, t, v, s, w)| serde_json::json!({"name": n, "task_type": t, "version": v, "is_sync": s, "endpoint": w}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!("{:<12} {:<28} {:<8} {:<6} ENDPOINT", "NAME", "TASK TYPE", "VERSION", "MODE");
        for (n, t, v, s, w) in rows {
            println!("{n:<12} {t:<28} {v:<8} {:<6} {w}", if s { "sync" } else { "async" });
        }
    }
    Exit::Ok
}
