//! Lets the `tern` binary find a prebuilt libduckdb copied next to it (see
//! agents/duckdb/build.rs): an rpath of `$ORIGIN`, so the binary runs from
//! `target/<profile>/` without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    println!("cargo:rerun-if-changed=build.rs");
}
