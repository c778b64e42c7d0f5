//! Local mode: `spark-submit --master local[…]` as a subprocess of the gateway, one directory
//! per job (`<work_dir>/<job>/`: `stdout`, `stderr`, `pid`, `handle`, `exit`, `killed`).
//!
//! `spark-submit` runs under a small `sh` wrapper in its own process group, which writes the
//! exit status to `exit` when it ends — also when the gateway that started it has restarted
//! meanwhile, so a job outlives its gateway and is found again by its directory.
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tern_agent_api::prelude::*;

use crate::codes;
use crate::config::SparkConfig;
use crate::standalone::environment;
use crate::states::{LOCAL_FAILED, LOCAL_KILLED, LOCAL_LOST, LOCAL_RUNNING, LOCAL_SUCCEEDED};
use crate::template::{AppType, SparkTask};

/// The wrapper: `$0` is the job directory, `"$@"` the `spark-submit` command.
const WRAPPER: &str = r#""$@" >"$0/stdout" 2>"$0/stderr" </dev/null; echo $? >"$0/exit.tmp"; mv "$0/exit.tmp" "$0/exit""#;

/// A job name is `tern-<hex key>` or `tern-adhoc-<digits>`: checked before it becomes a path.
pub fn valid_job_name(name: &str) -> bool {
    name.starts_with("tern-") && name.len() <= 80 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The directory jobs live in.
pub fn work_dir(config: &SparkConfig, host_temp: &Path) -> PathBuf {
    config.work_dir.clone().unwrap_or_else(|| host_temp.join("tern-spark"))
}

/// The `spark-submit` to run.
pub fn spark_submit(config: &SparkConfig, env: &std::collections::BTreeMap<String, String>) -> PathBuf {
    if let Some(p) = &config.spark_submit {
        return p.clone();
    }
    match env.get("SPARK_HOME").filter(|h| !h.trim().is_empty()) {
        Some(home) => Path::new(home).join("bin").join("spark-submit"),
        None => PathBuf::from("spark-submit"),
    }
}

/// `spark-submit`'s arguments for `task`.
pub fn submit_args(task: &SparkTask, config: &SparkConfig, app_name: &str, key: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = vec!["--master".into(), config.spark_master(), "--deploy-mode".into(), "client".into(), "--name".into(), app_name.into()];
    let mut props: std::collections::BTreeMap<String, String> = config.spark_conf.clone();
    for (k, v) in &task.properties {
        props.insert(k.clone(), v.clone());
    }
    // The agent's master and name, never the template's.
    props.remove("spark.master");
    props.remove("spark.app.name");
    props.remove("spark.submit.deployMode");
    if let Some(k) = key {
        props.insert("spark.tern.idempotencyKey".into(), k.into());
    }
    for (k, v) in props {
        args.push("--conf".into());
        args.push(format!("{k}={v}"));
    }
    if let (AppType::Java | AppType::Scala, Some(class)) = (task.app_type, &task.main_class) {
        args.push("--class".into());
        args.push(class.clone());
    }
    args.push(task.app_file.clone());
    args.extend(task.args.iter().cloned());
    args
}

/// Starts the job in `dir` (which must not exist yet); returns the wrapper's pid.
pub fn start(dir: &Path, program: &Path, args: &[String], task: &SparkTask, config: &SparkConfig) -> Result<u32, AgentError> {
    std::fs::create_dir_all(dir).map_err(|e| codes::launch_failed(format!("cannot create the job directory {}: {e}", dir.display())))?;
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(WRAPPER).arg(dir).arg(program).args(args);
    cmd.envs(environment(task, config)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    // The wrapper checks nothing: see that spark-submit can run at all first.
    if program.components().count() > 1 && !program.is_file() {
        return Err(codes::launch_failed(format!("spark-submit {} does not exist (set [agents.spark] spark_submit or SPARK_HOME)", program.display())));
    }
    let mut child = cmd.spawn().map_err(|e| codes::launch_failed(format!("cannot start sh for spark-submit: {e}")))?;
    let pid = child.id().ok_or_else(|| codes::launch_failed("spark-submit ended before its pid was known"))?;
    let _ = std::fs::write(dir.join("pid"), pid.to_string());
    wait_for_arguments(pid);
    // Reap it when it ends (the wrapper records the exit status itself).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}

/// Waits (at most 1 s) until `/proc/<pid>/cmdline` shows the new process's arguments. The spawn
/// returns once the child's `execve` has released the parent, but the kernel sets the new
/// argument bounds a moment later: on a busy host a GetTask right after the create read an
/// empty cmdline there, took the live wrapper for gone and reported the job lost.
fn wait_for_arguments(pid: u32) {
    let path = PathBuf::from(format!("/proc/{pid}/cmdline"));
    for _ in 0..200 {
        match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => std::thread::sleep(std::time::Duration::from_millis(5)),
            // Visible, or already ended (no directory): `state` tells the rest.
            _ => return,
        }
    }
}

/// Whether `pid` is the live wrapper of the job in `dir` (not a zombie, not a reused pid).
pub fn alive(pid: u32, dir: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else { return false };
    // The state follows the command name's closing parenthesis.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let wanted = dir.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|part| part == wanted)
}

/// The state name of the job in `dir`, and the detail to report.
pub fn state(dir: &Path, pid: u32) -> (String, String) {
    if alive(pid, dir) {
        return (LOCAL_RUNNING.into(), String::new());
    }
    let killed = dir.join("killed").exists();
    match std::fs::read_to_string(dir.join("exit")).ok().and_then(|t| t.trim().parse::<i32>().ok()) {
        Some(0) => (LOCAL_SUCCEEDED.into(), String::new()),
        Some(_) if killed => (LOCAL_KILLED.into(), String::new()),
        Some(code) => (LOCAL_FAILED.into(), format!("exit status {code}{}", tail(&dir.join("stderr"), 5))),
        None if killed => (LOCAL_KILLED.into(), String::new()),
        None => (LOCAL_LOST.into(), format!("job directory {}", dir.display())),
    }
}

/// Kills the job's process group; idempotent.
pub fn kill(dir: &Path, pid: u32) -> Result<(), AgentError> {
    std::fs::write(dir.join("killed"), b"")
        .map_err(|e| AgentError::unavailable(codes::LAUNCH_FAILED, format!("cannot mark {} as killed: {e}", dir.display())))?;
    if alive(pid, dir) {
        let _ = std::process::Command::new("kill").args(["-s", "TERM", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
    }
    Ok(())
}

/// The last `n` non-empty lines of a file, as `: a | b`.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(n)..];
    if last.is_empty() {
        return String::new();
    }
    let mut s = format!(": {}", last.join(" | "));
    s.truncate(2000);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_the_agents_master_and_name() {
        let t = SparkTask {
            app_file: "/a/entrypoint.py".into(),
            properties: vec![("spark.master".into(), "yarn".into()), ("spark.driver.memory".into(), "1g".into())],
            args: vec!["pyflyte-execute".into(), "--inputs".into(), "/i.pb".into()],
            ..Default::default()
        };
        let c = SparkConfig { mode: Some(crate::config::SparkMode::Local), master: Some("local[1]".into()), ..Default::default() };
        let a = submit_args(&t, &c, "tern-k", Some("k"));
        assert_eq!(
            a,
            ["--master", "local[1]", "--deploy-mode", "client", "--name", "tern-k", "--conf", "spark.driver.memory=1g", "--conf", "spark.tern.idempotencyKey=k", "/a/entrypoint.py", "pyflyte-execute", "--inputs", "/i.pb"]
        );
        let j = SparkTask { app_type: AppType::Java, app_file: "/a.jar".into(), main_class: Some("a.B".into()), ..Default::default() };
        let a = submit_args(&j, &c, "n", None);
        assert_eq!(&a[a.len() - 3..], ["--class", "a.B", "/a.jar"]);
    }

    #[test]
    fn names_and_binaries() {
        assert!(valid_job_name("tern-0123abcdef"));
        for bad in ["x", "tern-../a", "tern-a/b", "tern-a b"] {
            assert!(!valid_job_name(bad), "{bad}");
        }
        let env = [("SPARK_HOME".to_owned(), "/opt/spark".to_owned())].into();
        assert_eq!(spark_submit(&SparkConfig::default(), &env), Path::new("/opt/spark/bin/spark-submit"));
        assert_eq!(spark_submit(&SparkConfig::default(), &Default::default()), Path::new("spark-submit"));
    }

    #[tokio::test]
    async fn a_process_runs_ends_and_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let t = SparkTask::default();
        let c = SparkConfig::default();
        // `sh` stands in for spark-submit here: these are the wrapper's mechanics.
        let ok = dir.path().join("tern-ok");
        let pid = start(&ok, Path::new("sh"), &["-c".into(), "echo out; echo err >&2".into()], &t, &c).unwrap();
        wait_until(|| state(&ok, pid).0 != LOCAL_RUNNING).await;
        assert_eq!(state(&ok, pid).0, LOCAL_SUCCEEDED);
        assert_eq!(std::fs::read_to_string(ok.join("stdout")).unwrap(), "out\n");
        let bad = dir.path().join("tern-bad");
        let pid = start(&bad, Path::new("sh"), &["-c".into(), "echo boom >&2; exit 3".into()], &t, &c).unwrap();
        wait_until(|| state(&bad, pid).0 != LOCAL_RUNNING).await;
        let (name, detail) = state(&bad, pid);
        assert_eq!(name, LOCAL_FAILED);
        assert!(detail.contains("exit status 3") && detail.contains("boom"), "{detail}");
        let slow = dir.path().join("tern-slow");
        let pid = start(&slow, Path::new("sh"), &["-c".into(), "sleep 30".into()], &t, &c).unwrap();
        assert_eq!(state(&slow, pid).0, LOCAL_RUNNING);
        kill(&slow, pid).unwrap();
        wait_until(|| state(&slow, pid).0 != LOCAL_RUNNING).await;
        assert_eq!(state(&slow, pid).0, LOCAL_KILLED);
        kill(&slow, pid).unwrap();
        // No exit record and no process: lost.
        let lost = dir.path().join("tern-lost");
        std::fs::create_dir_all(&lost).unwrap();
        assert_eq!(state(&lost, 999_999_999).0, LOCAL_LOST);
        let e = start(&dir.path().join("tern-x"), Path::new("/nonexistent/spark-submit"), &[], &t, &c).unwrap_err();
        assert_eq!(e.code, codes::LAUNCH_FAILED);
    }

    /// A GetTask right after the create sees the job running, also while the new process is
    /// still inside its exec (on a busy host the CI once read an empty cmdline there and
    /// reported the live job lost). The busy threads widen that window.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_is_running_as_soon_as_it_is_started() {
        let dir = tempfile::tempdir().unwrap();
        let (t, c) = (SparkTask::default(), SparkConfig::default());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || while !stop.load(std::sync::atomic::Ordering::Relaxed) { std::hint::spin_loop() })
            })
            .collect();
        for i in 0..40 {
            let job = dir.path().join(format!("tern-{i}"));
            let pid = start(&job, Path::new("sh"), &["-c".into(), "sleep 30".into()], &t, &c).unwrap();
            let seen = state(&job, pid).0;
            kill(&job, pid).unwrap();
            assert_eq!(seen, LOCAL_RUNNING, "job {i}, checked at once after its start");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        busy.into_iter().for_each(|b| b.join().unwrap());
    }

    async fn wait_until(done: impl Fn() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out");
    }
}
