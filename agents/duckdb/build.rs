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
//!    `libduckdb.so`. libduckdb-sys (no `DUCKDB_LIB_DIR`) emits `rustc-link-lib=dylib=duckdb`
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
use std::process::Command;

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
        .ok_or_else(|| format!("unexpected OUT_DIR layout {}; set DUCKDB_LIB_DIR and LD_LIBRARY_PATH", out.display()))?;
    Ok(vec![profile.join("deps"), profile.to_path_buf()])
}

/// The npm package that ships libduckdb for the target, if there is one.
fn npm_package() -> Result<&'static str, String> {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let libc = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    match (os.as_str(), arch.as_str(), libc.as_str()) {
        ("linux", "x86_64", "gnu") => Ok("@duckdb/node-bindings-linux-x64"),
        ("linux", "aarch64", "gnu") => Ok("@duckdb/node-bindings-linux-arm64"),
        _ => Err(format!(
            "no prebuilt libduckdb is known for target {}.\n{}",
            env::var("TARGET").unwrap_or_default(),
            options_without_npm()
        )),
    }
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
    let home = env::var_os("HOME").filter(|v| !v.is_empty()).ok_or_else(|| {
        "HOME is not set: set TERN_DUCKDB_CACHE to a directory for the prebuilt libduckdb".to_owned()
    })?;
    Ok(PathBuf::from(home).join(".cache/tern/libduckdb"))
}

/// `<cache>/<version>/<target>/`, holding `libduckdb.so` (fetched now if missing).
fn cached_library() -> Result<PathBuf, String> {
    let target = env::var("TARGET").map_err(|_| "TARGET is not set (not run by cargo?)".to_owned())?;
    let dir = cache_root()?.join(DUCKDB_VERSION).join(&target);
    let lib = dir.join(LIB_NAME);
    println!("cargo:rerun-if-changed={}", lib.display());
    if lib.is_file() {
        return Ok(dir);
    }
    let package = npm_package()?;
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".fetch-{}", std::process::id()));
    let result = fetch(package, &tmp, &lib);
    let _ = fs::remove_dir_all(&tmp);
    result.map(|()| dir)
}

/// `npm pack` the package into `tmp`, extract `package/libduckdb.so`, rename it to `lib`.
fn fetch(package: &str, tmp: &Path, lib: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let spec = format!("{package}@{NPM_RELEASE}");
    // Not a cargo:warning: cargo replays those on every later build of this package.
    eprintln!("fetching prebuilt libduckdb {DUCKDB_VERSION}: npm pack {spec}");
    let npm_failed = |why: String| {
        format!(
            "could not obtain the prebuilt libduckdb {DUCKDB_VERSION}: {why}\n\
             Options:\n  \
             - install npm (Node.js) with access to an npm registry, then build again; the library is cached in {}\n  \
             - set DUCKDB_LIB_DIR to a directory holding libduckdb {DUCKDB_VERSION} (libduckdb.so)\n  \
             - build DuckDB from source: cargo build --features duckdb-bundled (this crate alone: --features bundled; about 30 min on 2 cores)",
            lib.parent().map(|p| p.display().to_string()).unwrap_or_default()
        )
    };
    let out = Command::new("npm")
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
    fs::rename(&extracted, lib).map_err(|e| format!("cannot move {} to {}: {e}", extracted.display(), lib.display()))
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
