//! moto's server for tests, started on a free port and killed when dropped. Shared by
//! type-transformers' S3 tests (`tests/s3.rs`) and the AWS Batch agent's tests
//! (`agents/batch/tests/support/mod.rs` includes this file by path), so there is one way to
//! find and start moto.
//!
//! moto is found at `$TERN_MOTO_SERVER`, else next to `$TERN_PYTHON` (the test virtualenv's
//! python, set by scripts/test.sh). Without it a test prints why and passes, except under
//! `CI=true`, where a missing peer is a failure.
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Moto {
    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `moto_server` of the test virtualenv.
pub fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TERN_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let python = PathBuf::from(std::env::var_os("TERN_PYTHON").filter(|p| !p.is_empty())?);
    Some(python.parent()?.join("moto_server"))
}

/// Starts `moto_server`, or explains why not: `None` means skip (a failure under `CI=true`).
pub fn start_moto(test: &str) -> Option<Moto> {
    start(test, None, &[])
}

/// Starts moto: `moto_server` itself, or `script` (a Python file that serves moto, given
/// `--port PORT`) run by the python next to `moto_server`, with `env` added.
pub fn start(test: &str, script: Option<&Path>, env: &[(&str, OsString)]) -> Option<Moto> {
    start_with_args(test, script, &[], env)
}

/// [`start`], with more arguments for `script`.
pub fn start_with_args(test: &str, script: Option<&Path>, args: &[&str], env: &[(&str, OsString)]) -> Option<Moto> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let missing = |why: String| {
        if ci {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!("SKIPPED {test}: {why}; set TERN_MOTO_SERVER to moto_server (pip install \"moto[server]==5.2.5\")");
        None
    };
    let Some(bin) = moto_binary() else {
        return missing("neither TERN_MOTO_SERVER nor TERN_PYTHON is set".to_owned());
    };
    if !bin.is_file() {
        return missing(format!("{} does not exist", bin.display()));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::env::temp_dir().join(format!("tern-moto-{}-{port}.log", std::process::id()));
    let mut command = match script {
        None => {
            let mut c = Command::new(&bin);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        }
        Some(script) => {
            let python = bin.with_file_name("python");
            let mut c = Command::new(python);
            c.arg(script).args(["--port", &port.to_string()]).args(args);
            c
        }
    };
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot start moto ({}): {e}", bin.display()));
    let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), log };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if answers(port) {
            return Some(moto);
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("{test}: moto exited ({status}) before answering:\n{}", moto.log());
        }
        assert!(Instant::now() < deadline, "{test}: moto did not answer on port {port} within 60 s:\n{}", moto.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether moto answers `GET /moto-api/` on `port`.
pub fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}
