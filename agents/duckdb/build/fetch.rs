//! Fetching the prebuilt libduckdb: `npm pack` of DuckDB's Node bindings package.
//! Part of the build script (`build.rs` includes it); `tests/build_fetch.rs` runs it too.
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::pin::{self, Pin};

const LIB_NAME: &str = "libduckdb.so";

/// `npm pack <pin.package>@<release>` (with the `npm` program given) into `tmp`, check the archive
/// and the `package/libduckdb.so` extracted from it against `pin`, then rename it to `lib`.
/// Nothing reaches `lib` unless both digests match.
pub fn fetch(npm: &Path, pin: &Pin, release: &str, version: &str, tmp: &Path, lib: &Path) -> Result<(), String> {
    let spec = format!("{}@{release}", pin.package);
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    // Not a cargo:warning: cargo replays those on every later build of this package.
    eprintln!("fetching prebuilt libduckdb {version}: npm pack {spec}");
    let npm_failed = |why: String| {
        format!(
            "could not obtain the prebuilt libduckdb {version}: {why}\n\
             Options:\n  \
             - install npm (Node.js) with access to an npm registry, then build again; the library is cached in {}\n  \
             - set DUCKDB_LIB_DIR to a directory holding libduckdb {version} (libduckdb.so)\n  \
             - build DuckDB from source: cargo build --features duckdb-bundled (this crate alone: --features bundled; about 30 min on 2 cores)",
            lib.parent().map(|p| p.display().to_string()).unwrap_or_default()
        )
    };
    let out = Command::new(npm)
        .args(["pack", "--ignore-scripts", "--silent", &spec])
        .current_dir(tmp)
        .output()
        .map_err(|e| npm_failed(format!("cannot run npm ({e})")))?;
    if !out.status.success() {
        return Err(npm_failed(format!(
            "`npm pack {spec}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let tarball = fs::read_dir(tmp)
        .map_err(|e| npm_failed(format!("cannot list {}: {e}", tmp.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or_else(|| npm_failed(format!("`npm pack {spec}` produced no .tgz")))?;
    pin::check(&format!("the archive of {spec}"), &tarball, pin.archive_sha256)?;
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(tmp)
        .arg(format!("package/{LIB_NAME}"))
        .status()
        .map_err(|e| npm_failed(format!("cannot run tar ({e})")))?;
    let extracted = tmp.join("package").join(LIB_NAME);
    if !status.success() || !extracted.is_file() {
        return Err(npm_failed(format!("{} holds no package/{LIB_NAME}", tarball.display())));
    }
    pin::check(&format!("the {LIB_NAME} in {spec}"), &extracted, pin.library_sha256)?;
    fs::rename(&extracted, lib).map_err(|e| format!("cannot move {} to {}: {e}", extracted.display(), lib.display()))
}
