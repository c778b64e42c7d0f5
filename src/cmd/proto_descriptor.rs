use std::path::Path;

use super::fail;
use crate::exit::Exit;

pub fn run(out: &Path) -> Exit {
    match std::fs::write(out, tern_agent_api::proto::FILE_DESCRIPTOR_SET) {
        Ok(()) => Exit::Ok,
        Err(e) => fail(Exit::System, format!("[TERN-C002] cannot write {}: {e}", out.display())),
    }
}
