//! One module per subcommand; each returns the process exit code.
mod agents;
mod cache;
mod config;
mod engine;
mod executions;
mod output;
mod proto_descriptor;
mod run;
mod serve;
mod state;
mod target;
mod validate;

use crate::cli::{CacheCommand, Command, ConfigCommand};
use crate::exit::Exit;

pub async fn dispatch(command: Command) -> Exit {
    match command {
        Command::Serve { addr, config, metrics_addr } => serve::run(addr, config, metrics_addr).await,
        Command::Agents { target, json } => agents::run(&target, json).await,
        Command::ProtoDescriptor { out } => proto_descriptor::run(&out),
        Command::Config(ConfigCommand::Show { config, embedded, json }) => {
            let mode = if embedded { tern_gateway::Mode::Embedded } else { tern_gateway::Mode::Serve };
            config::show(config.as_deref(), mode, json)
        }
        Command::Run { file, inputs, target, json, max_parallel } => {
            run::run(&file, &inputs, &target, json, max_parallel).await
        }
        Command::Validate { file, target, json } => validate::run(&file, &target, json).await,
        Command::Executions { state, json } => executions::list(&state, json).await,
        Command::Show { id, state, json } => executions::show(&id, &state, json).await,
        Command::Recover { id, target, json } => run::recover(&id, &target, json).await,
        Command::Abort { id, target, json } => run::abort(&id, &target, json).await,
        Command::Cache(CacheCommand::List { state, json }) => cache::list(&state, json).await,
        Command::Cache(CacheCommand::Evict { keys, task, all, state }) => {
            cache::evict(&keys, task.as_deref(), all, &state).await
        }
    }
}

/// Prints an error for the user and returns the exit code.
pub fn fail(exit: Exit, message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    exit
}
