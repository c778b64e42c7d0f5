//! Settings of the shell agent, fixed when the gateway starts.
use std::path::PathBuf;

/// Variables of the gateway's own environment that commands see by default. Nothing
/// else leaks: credentials in the gateway's environment stay out of user commands.
pub const DEFAULT_INHERITED: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];

#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// Where per-attempt scratch directories (captured output, default working
    /// directory) are created.
    pub scratch_root: PathBuf,
    /// The base environment of every command; the task's `container.env` is added on top.
    pub inherited_env: Vec<(String, String)>,
    /// Lines of output kept in memory per running command for `GetTaskLogs`.
    pub log_lines_in_memory: usize,
}

impl ShellConfig {
    /// The defaults, taking [`DEFAULT_INHERITED`] variables and the temp directory from
    /// this process's environment (call it where the gateway is composed).
    pub fn from_process_env() -> Self {
        Self {
            scratch_root: std::env::temp_dir(),
            inherited_env: DEFAULT_INHERITED
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
                .collect(),
            log_lines_in_memory: 10_000,
        }
    }
}
