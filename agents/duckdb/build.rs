//! Provides `libduckdb` so that a plain `cargo build` links in seconds instead of
//! compiling DuckDB's C++ for half an hour.
//!
//! Order of preference:
//! 1. feature `bundled` (root feature `duckdb-bundled`): libduckdb-sys compiles DuckDB
//!    from source; nothing to do here.
//! 2. `DUCKDB_LIB_DIR` set: libduckdb-sys links the library found there; this script only
//!    copies it next to the build artifacts so `cargo run`/`cargo test` find it.
//! 3. Otherwise the prebuilt library of the matching DuckDB version is taken from a
//!    per-user cache (`$TERN_DUCKDB_CACHE`, default `~/.cache/tern/libduckdb`), filled on
//!    first use with `npm pack` of DuckDB's official Node bindings package, which ships
//!    `libduckdb.so`. The archive and the library are checked against sha256 pins
//!    (`build/pin.rs`, which says how to update them) and refused on mismatch; so is a
//!    cached library that does not match. libduckdb-sys (no `DUCKDB_LIB_DIR`) emits `rustc-link-lib=dylib=duckdb`
//!    and relies on the search path this script adds.
//!
//! In cases 2 and 3 the library is copied (hard-linked when possible) into
//! `<target>/<profile>/` and `<target>/<profile>/deps/`: cargo puts `deps/` on the
//! library path of `cargo test`/`cargo run`, and a binary with rpath `$ORIGIN` (set by
//! the root package) finds it beside itself. `cargo:libdir` tells dependents' build
//! scripts (`DEP_TERN_DUCKDB_LIBDIR`) where the library lives.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/fetch.rs"]
mod fetch;
#[path = "build/pin.rs"]
mod pin;

/// DuckDB version of `duckdb = "=1.10506.0"`; the library must match it exactly.
const DUCKDB_VERSION: &str = "1.5.6";
/// Release of DuckDB's Node bindings that ships libduckdb `DUCKDB_VERSION`.
const NPM_RELEASE: &str = "1.5.6-r.1";
const LIB_NAME: &str = "libduckdb.so";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=TERN_DUCKDB_CACHE");
    if env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    if let Err(msg) = run() {
        eprintln!("\nerror: {msg}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let lib_dir = match env::var_os("DUCKDB_LIB_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = cached_library()?;
            println!("cargo:rustc-link-search=native={}", dir.display());
            dir
        }
    };
    println!("cargo:libdir={}", lib_dir.display());
    let lib = lib_dir.join(LIB_NAME);
    if !lib.is_file() {
        // DUCKDB_LIB_DIR may hold only a static library or another file name:
        // libduckdb-sys links it; finding it at run time is then the user's business.
        return Ok(());
    }
    for dir in artifact_dirs()? {
        place(&lib, &dir)?;
        println!("cargo:rerun-if-changed={}", dir.join(LIB_NAME).display());
    }
    Ok(())
}

/// `<target>/<profile>` and its `deps`, from `OUT_DIR = <target>/<profile>/build/<pkg>-<hash>/out`.
fn artifact_dirs() -> Result<Vec<PathBuf>, String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set (not run by cargo?)")?);
    let profile = out
        .parent()
        .and_then(Path::parent)
        .filter(|build| build.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .ok_or_else(|| {
            format!("unexpected OUT_DIR layout {}; set DUCKDB_LIB_DIR and LD_LIBRARY_PATH", out.display())
        })?;
    Ok(vec![profile.join("deps"), profile.to_path_buf()])
}

/// The pinned npm package that ships libduckdb for the target, if there is one.
fn target_pin() -> Result<&'static pin::Pin, String> {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let libc = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    pin::for_target(&os, &arch, &libc).ok_or_else(|| {
        format!(
            "no prebuilt libduckdb is known for target {}.\n{}",
            env::var("TARGET").unwrap_or_default(),
            options_without_npm()
        )
    })
}

fn options_without_npm() -> String {
    format!(
        "To build the DuckDB agent, either:\n  \
         - set DUCKDB_LIB_DIR to a directory holding libduckdb {DUCKDB_VERSION} (libduckdb.so), or\n  \
         - build DuckDB from source: cargo build --features duckdb-bundled (this crate alone: --features bundled; about 30 min on 2 cores), or\n  \
         - leave the agent out: cargo build --no-default-features --features <the agents you need>"
    )
}

fn cache_root() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("TERN_DUCKDB_CACHE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "HOME is not set: set TERN_DUCKDB_CACHE to a directory for the prebuilt libduckdb".to_owned())?;
    Ok(PathBuf::from(home).join(".cache/tern/libduckdb"))
}

/// `<cache>/<version>/<target>/`, holding `libduckdb.so` (fetched now if missing).
fn cached_library() -> Result<PathBuf, String> {
    let target = env::var("TARGET").map_err(|_| "TARGET is not set (not run by cargo?)".to_owned())?;
    let dir = cache_root()?.join(DUCKDB_VERSION).join(&target);
    let lib = dir.join(LIB_NAME);
    println!("cargo:rerun-if-changed={}", lib.display());
    let pin = target_pin();
    if lib.is_file() {
        // Checked on every use: the cache may predate the pin, or have been changed since.
        if let Ok(pin) = pin {
            pin::check("the cached", &lib, pin.library_sha256)?;
        }
        return Ok(dir);
    }
    let pin = pin?;
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".fetch-{}", std::process::id()));
    let result = fetch::fetch(Path::new("npm"), pin, NPM_RELEASE, DUCKDB_VERSION, &tmp, &lib);
    let _ = fs::remove_dir_all(&tmp);
    result.map(|()| dir)
}

/// Puts `lib` into `dir` atomically (hard link, else copy), unless it is already there.
/// Never rewrites a file in place: a running test may have it mapped.
fn place(lib: &Path, dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dest = dir.join(LIB_NAME);
    let src_meta = fs::metadata(lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
    if let Ok(m) = fs::metadata(&dest) {
        if (m.dev(), m.ino()) == (src_meta.dev(), src_meta.ino()) {
            return Ok(());
        }
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{LIB_NAME}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(lib, &tmp).is_err() {
        fs::copy(lib, &tmp).map_err(|e| format!("cannot copy {} to {}: {e}", lib.display(), tmp.display()))?;
        // Keep the source's mtime so cargo's rerun-if-changed check stays quiet.
        if let (Ok(f), Ok(t)) = (fs::File::options().write(true).open(&tmp), src_meta.modified()) {
            let _ = f.set_modified(t);
        }
    }
    fs::rename(&tmp, &dest).map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), dest.display()))
}
