//! A private directory per attempt: captured stdout/stderr and, unless the template
//! names a working directory, the working directory itself. Removed when the job ends.
use std::path::{Path, PathBuf};

use tern_agent_api::prelude::AgentError;

use crate::codes;

#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn create(root: &Path) -> Result<Self, AgentError> {
        let fail = |e: std::io::Error| {
            AgentError::unavailable(codes::WORKDIR, format!("cannot create a scratch directory in {}: {e}", root.display()))
        };
        std::fs::create_dir_all(root).map_err(fail)?;
        let dir = tempfile::Builder::new().prefix("tern-shell-").tempdir_in(root).map_err(fail)?;
        std::fs::create_dir(dir.path().join("work")).map_err(fail)?;
        Ok(Self { dir })
    }

    pub fn stdout(&self) -> PathBuf {
        self.dir.path().join("stdout.txt")
    }

    pub fn stderr(&self) -> PathBuf {
        self.dir.path().join("stderr.txt")
    }

    /// The working directory used when the template names none.
    pub fn fresh_workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}
