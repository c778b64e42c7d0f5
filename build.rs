//! Lets the `tern` binary find the prebuilt libduckdb (see agents/duckdb/build.rs)
//! without LD_LIBRARY_PATH: an rpath of `$ORIGIN` (the library is copied next to the
//! binary in `target/<profile>/`) plus the library's cache directory (for a binary
//! copied elsewhere on the same machine, e.g. by `cargo install`).
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    if let Ok(dir) = std::env::var("DEP_TERN_DUCKDB_LIBDIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
