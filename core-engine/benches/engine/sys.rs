//! What the process and the machine look like: RSS from /proc, the filesystem under a path.
use std::path::Path;

/// A `/proc/self/status` field in MiB (`VmRSS`, `VmHWM`).
pub fn status_mib(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = text
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The filesystem type and device of the mount holding `path` (longest mount-point prefix).
pub fn filesystem_of(path: &Path) -> (String, String) {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || !real.starts_with(f[1]) {
            continue;
        }
        if best.as_ref().is_none_or(|(len, _, _)| f[1].len() > *len) {
            best = Some((f[1].len(), f[2].to_owned(), f[0].to_owned()));
        }
    }
    best.map(|(_, fs, dev)| (fs, dev)).unwrap_or_else(|| ("unknown".into(), "unknown".into()))
}

/// A multi-threaded runtime with one worker per CPU this process may use, or the
/// single-threaded one on one CPU: what `tern` itself picks (src/main.rs).
pub fn runtime() -> tokio::runtime::Runtime {
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cpus);
        b
    };
    builder.enable_all().build().unwrap_or_else(|e| crate::fail(format!("cannot start the runtime: {e}")))
}

/// CPU seconds (user + system) this process has used so far, all its threads together, from
/// `/proc/self/stat` (clock ticks of 10 ms): unlike wall time, it does not count waiting for
/// the disk or for a CPU other processes hold.
pub fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}
