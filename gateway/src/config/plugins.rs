//! `[plugins]`: agent libraries the gateway loads at start (`docs/plugins.md`).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Every shared library (`*.so`; `*.dylib` on macOS) in this directory is loaded at
    /// start, in name order. Unset: no plugins.
    pub dir: Option<PathBuf>,
    /// A library that cannot be loaded (not a Tern plugin, another ABI version, a name
    /// already taken): `"fail"` stops the start (default), `"skip"` leaves it out, says
    /// so at start-up and serves the rest.
    pub on_error: OnPluginError,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPluginError {
    #[default]
    Fail,
    Skip,
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use crate::config::GatewayConfig;

    use super::*;

    #[test]
    fn none_by_default_set_by_file_or_environment_and_unknown_keys_refused() {
        let c = GatewayConfig::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(c.plugins, PluginsConfig::default());
        assert_eq!(c.plugins.on_error, OnPluginError::Fail);

        let c = GatewayConfig::parse("[plugins]\ndir = \"/srv/p\"\non_error = \"skip\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(c.plugins.dir.as_deref(), Some(Path::new("/srv/p")));
        assert_eq!(c.plugins.on_error, OnPluginError::Skip);

        let env = Arc::new([("TERN_PLUGINS__DIR".to_owned(), "/opt/p".to_owned())].into_iter().collect());
        let c = GatewayConfig::parse_with_env("[plugins]\ndir = \"/srv/p\"\n", None, env).unwrap();
        assert_eq!(c.plugins.dir.as_deref(), Some(Path::new("/opt/p")), "the environment wins");

        for (text, key) in [("[plugins]\ndirs = \"/x\"\n", "dirs"), ("[plugins]\non_error = \"ignore\"\n", "ignore")] {
            let err = GatewayConfig::parse(text, Path::new("t.toml")).unwrap_err().to_string();
            assert!(err.contains("TERN-G002") && err.contains(key), "{err}");
        }
    }
}
