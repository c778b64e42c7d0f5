//! The sha256 pins of the prebuilt libduckdb the build script fetches: the npm archive is
//! checked before anything is extracted from it, and a library already in the cache is
//! checked before it is linked (a cache filled by an older, unverified build counts).
//!
//! Updating the pin (a new DuckDB version or npm release), from a machine you trust:
//! ```text
//! npm pack --ignore-scripts @duckdb/node-bindings-linux-x64@<release>     # and -linux-arm64
//! npm view @duckdb/node-bindings-linux-x64@<release> dist.integrity         # must equal the archive's sha512 (base64)
//! sha256sum duckdb-node-bindings-linux-x64-<release>.tgz                   # → archive_sha256
//! tar xzf duckdb-node-bindings-linux-x64-<release>.tgz package/libduckdb.so && sha256sum package/libduckdb.so  # → library_sha256
//! ```
//! then change `DUCKDB_VERSION`/`NPM_RELEASE` in build.rs and both digests of each target here.
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// What the build accepts for one target.
#[derive(Debug)]
pub struct Pin {
    /// The npm package shipping `libduckdb.so` for the target.
    pub package: &'static str,
    /// sha256 of the `.tgz` that `npm pack <package>@<NPM_RELEASE>` writes.
    pub archive_sha256: &'static str,
    /// sha256 of the `package/libduckdb.so` inside it.
    pub library_sha256: &'static str,
}

/// Pins for release 1.5.6-r.1 (libduckdb 1.5.6); computed from the real archives, whose
/// sha512 matched the registry's `dist.integrity`.
const LINUX_X64: Pin = Pin {
    package: "@duckdb/node-bindings-linux-x64",
    archive_sha256: "1b9f82478539bb9a1d1df44bd103121a12ae52142c07158dc52b97d2ec1d69ff",
    library_sha256: "3f4962cdd266eab2b479a5b5a4a6d063d279b2954ae814ed00385d553b747633",
};
const LINUX_ARM64: Pin = Pin {
    package: "@duckdb/node-bindings-linux-arm64",
    archive_sha256: "3a45a6305b3235a781ed9de25aa795a3862acd042782d1f864e1bdb656de212b",
    library_sha256: "23686593dba4ec22c6e581bb1c843b3964e84c4bc4d0063d8b4daddd2e20e30a",
};

/// The pin for a target (`CARGO_CFG_TARGET_OS`, `_ARCH`, `_ENV`), if a prebuilt library is known for it.
pub fn for_target(os: &str, arch: &str, libc: &str) -> Option<&'static Pin> {
    match (os, arch, libc) {
        ("linux", "x86_64", "gnu") => Some(&LINUX_X64),
        ("linux", "aarch64", "gnu") => Some(&LINUX_ARM64),
        _ => None,
    }
}

/// Lower-case hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `path`'s sha256 is `expected`, else an error naming both digests and what to do.
pub fn check(what: &str, path: &Path, expected: &str) -> Result<(), String> {
    let actual = sha256_file(path)?;
    if actual == expected {
        return Ok(());
    }
    Err(format!(
        "sha256 mismatch for {what} {}:\n  expected {expected}\n  got      {actual}\n\
         It is not the libduckdb this build pins (agents/duckdb/build/pin.rs), so it is not used.\n\
         If it came from a cache, delete it and build again; if the registry served it, do not trust it.\n\
         Updating DuckDB on purpose? Follow the steps at the top of agents/duckdb/build/pin.rs.",
        path.display()
    ))
}
