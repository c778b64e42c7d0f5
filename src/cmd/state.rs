//! Where a command's engine state lives: `--state` (alias `--state-dir`), else `[engine]
//! state` of the configuration (the file, or `TERN_ENGINE__STATE`), else `.tern`. Each is a
//! directory (SQLite), a `postgres://` URL, or a secret reference (`env:NAME`,
//! `file:PATH`) holding either, resolved here so the URL's password is never in the
//! configuration or the command line.
use std::path::PathBuf;

use tern_agent_api::secrets::{read_reference, SecretRef};
use tern_core_engine::{codes, StateLocation};
use tern_gateway::GatewayConfig;

/// The default state directory.
pub const DEFAULT_DIR: &str = ".tern";

/// The state location from the flag, else the configuration, else [`DEFAULT_DIR`].
pub fn location(flag: Option<&str>, config: &GatewayConfig) -> Result<StateLocation, String> {
    let (text, from) = match (flag, config.engine.state.as_deref()) {
        (Some(f), _) => (f, "--state"),
        (None, Some(c)) => (c, "[engine] state"),
        (None, None) => return Ok(StateLocation::Sqlite(PathBuf::from(DEFAULT_DIR))),
    };
    if text.trim().is_empty() {
        return Err(format!("[{}] {from} is empty", codes::STORE_LOCATION));
    }
    if text.starts_with("env:") || text.starts_with("file:") {
        let reference: SecretRef = text.parse().map_err(|e| format!("[{}] {from}: {e}", codes::STORE_LOCATION))?;
        // The error names the reference, never a value.
        let value =
            read_reference(&reference).map_err(|e| format!("[{}] {from}: {}", codes::STORE_LOCATION, e.message))?;
        return Ok(StateLocation::parse(value.expose().trim()));
    }
    Ok(StateLocation::parse(text))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> GatewayConfig {
        GatewayConfig::parse(text, Path::new("tern.toml")).unwrap()
    }

    #[test]
    fn the_flag_wins_over_the_config_and_the_default_is_dot_tern() {
        let c = config("[engine]\nstate = \"postgres://tern@db/tern\"\n");
        assert_eq!(location(Some("/tmp/s"), &c).unwrap(), StateLocation::Sqlite("/tmp/s".into()));
        assert_eq!(location(None, &c).unwrap().backend(), "postgres");
        assert_eq!(location(None, &config("")).unwrap(), StateLocation::Sqlite(".tern".into()));
    }

    #[test]
    fn a_secret_reference_is_resolved_and_its_value_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state-url");
        std::fs::write(&file, "postgres://tern:s3cret-42@db/tern\n").unwrap();
        let loc = location(Some(&format!("file:{}", file.display())), &config("")).unwrap();
        assert_eq!(loc.backend(), "postgres");
        assert!(!format!("{loc} {loc:?}").contains("s3cret-42"));
        let err = location(Some("env:TERN_TEST_NO_SUCH_VARIABLE_X"), &config("")).unwrap_err();
        assert!(err.contains("TERN-E404") && err.contains("TERN_TEST_NO_SUCH_VARIABLE_X"), "{err}");
    }
}
