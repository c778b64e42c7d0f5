//! Command-line surface.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "tern", version, about = "Flyte-compatible agent gateway and typed DAG engine")]
pub struct Cli {
    /// More logging (-v info, -vv debug); TERN_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as `text` or `json` (one object per line, with the request span's fields).
    #[arg(long, global = true, env = "TERN_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the agent protocol (async, sync, metadata), health and reflection over gRPC.
    Serve {
        /// Listen address, HOST:PORT (overrides [server].addr).
        #[arg(long)]
        addr: Option<String>,
        /// Gateway config file (tern.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve Prometheus `/metrics` on HOST:PORT (overrides [metrics].addr).
        #[arg(long)]
        metrics_addr: Option<String>,
    },
    /// Run a workflow and print its outputs.
    Run {
        /// Workflow YAML file.
        file: PathBuf,
        /// Workflow input as NAME=VALUE (repeatable).
        #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        #[command(flatten)]
        target: TargetArgs,
        /// Print one JSON object instead of human-readable progress and outputs.
        #[arg(long)]
        json: bool,
        /// Maximum nodes running at once.
        #[arg(long, default_value_t = 8)]
        max_parallel: usize,
    },
    /// Check a workflow without running it.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        json: bool,
    },
    /// List the agents (task types) reachable from here.
    Agents {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        json: bool,
    },
    /// List recorded executions.
    Executions {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one execution: its nodes, attempts, errors and outputs.
    Show {
        id: String,
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// Resume an interrupted execution (re-issues creates idempotently, resumes polling).
    Recover {
        id: String,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Abort an execution: delete every running node's job and record ABORTED (waits for
    /// the process driving it, or drives the abort itself when none does).
    Abort {
        id: String,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Inspect the gateway configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The task output cache: list or evict entries.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Write the compiled protobuf FileDescriptorSet of Tern's flyteidl-compatible protos.
    #[command(hide = true)]
    ProtoDescriptor {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration (file, environment overrides, standard variables
    /// and defaults), secrets redacted; exits 2 with the reason if it is invalid.
    Show {
        /// Gateway config file (tern.toml); without it, the defaults and the environment.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Show what `tern run` would use instead of `tern serve`.
        #[arg(long)]
        embedded: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List cache entries: key, task, cache version, when, and the execution/node that produced them.
    List {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// Evict cache entries (by key or unique key prefix, by task name, or all); prints how many.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["keys", "task", "all"])))]
    Evict {
        /// Keys (or unique prefixes of at least 8 hex digits) as `tern cache list` shows them.
        keys: Vec<String>,
        /// Every entry of this task (its name as listed, e.g. `wf.node`).
        #[arg(long)]
        task: Option<String>,
        /// Every entry.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        state: StateArgs,
    },
}

const STATE_HELP: &str = "Where executions are recorded: a directory (SQLite tern.db; node data in <DIR>/data), \
a PostgreSQL URL (postgres://USER@HOST:PORT/DB; password from PGPASSWORD or ~/.pgpass, or in the URL), or a secret \
reference env:NAME / file:PATH holding either. Default: [engine] state of the config (or TERN_ENGINE__STATE), \
else .tern";

/// Where agents are and where state lives.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Send every task to this gateway or connector server (HOST:PORT or URL) instead of
    /// the in-process agents.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Route one task type to a gRPC agent server: TASK_TYPE=HOST:PORT (repeatable).
    #[arg(long = "connector", value_name = "TASK_TYPE=HOST:PORT")]
    pub connectors: Vec<String>,
    /// PEM CA to trust for https:// gateways and connectors (besides the system's roots;
    /// overrides [client] ca_cert).
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// Bearer token for --gateway/--connector, as a secret reference: env:NAME or
    /// file:PATH (overrides [client] token).
    #[arg(long, value_name = "env:NAME|file:PATH")]
    pub token: Option<String>,
    /// Gateway config for the in-process agents (tern.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long = "state", visible_alias = "state-dir", value_name = "DIR|postgres://URL", help = STATE_HELP)]
    pub state: Option<String>,
}

/// Where state lives, for the commands that only read it.
#[derive(clap::Args, Debug, Clone)]
pub struct StateArgs {
    #[arg(long = "state", visible_alias = "state-dir", value_name = "DIR|postgres://URL", help = STATE_HELP)]
    pub state: Option<String>,
    /// Config file whose `[engine] state` is used when --state is not given.
    #[arg(long)]
    pub config: Option<PathBuf>,
}
