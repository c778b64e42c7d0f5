//! `tern`: the composition root. Embedded mode wires the engine to an in-process
//! gateway; `tern serve` exposes the same agents over gRPC.
mod cli;
mod cmd;
mod exit;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a gateway allocates and frees small buffers for
/// every request, and glibc's arenas spent ~15% of `tern serve`'s CPU doing it
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose, cli.log_format);
    let runtime = match runtime_builder().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: [TERN-C001] cannot start the async runtime: {e}");
            return exit::Exit::System.into();
        }
    };
    let code = runtime.block_on(cmd::dispatch(cli.command));
    code.into()
}

/// One worker thread per CPU this process may use (`TERN_WORKER_THREADS` overrides). With a
/// single CPU (a pod limited to one core, `taskset`), tokio's single-threaded scheduler: on
/// one core it serves about 1.5x the requests of the multi-threaded one with one worker
/// (docs/benchmarks.md). Blocking work (DuckDB queries, file I/O) still runs on tokio's
/// blocking pool either way.
fn runtime_builder() -> tokio::runtime::Builder {
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let threads = std::env::var("TERN_WORKER_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(cpus);
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
}

fn init_tracing(verbose: u8, format: cli::LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info,tern=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // snowflake-api logs Snowflake's login answer (session and master tokens) and query results at
    // debug through `log`: never below info, whatever the verbosity.
    let filter = match "snowflake_api=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        cli::LogFormat::Text => builder.try_init(),
        cli::LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
}
