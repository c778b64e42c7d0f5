//! The build script's fetch of the prebuilt libduckdb (`build/fetch.rs`, included here as
//! the build script includes it), with a stand-in `npm` that packs an archive which is not
//! the pinned one: the build must refuse it and leave nothing in the cache.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[path = "../build/fetch.rs"]
mod fetch;
#[path = "../build/pin.rs"]
mod pin;

/// A shell script answering `npm pack …` with an archive holding `package/libduckdb.so`.
fn fake_npm(dir: &Path) -> std::path::PathBuf {
    let npm = dir.join("npm");
    std::fs::write(
        &npm,
        "#!/bin/sh\nmkdir -p package && printf 'not duckdb' > package/libduckdb.so && tar czf fake-1.0.0.tgz package && rm -r package\n",
    )
    .unwrap();
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
    npm
}

#[test]
fn an_archive_that_is_not_the_pinned_one_is_refused_and_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let npm = fake_npm(dir.path());
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let lib = cache.join("libduckdb.so");
    let pin = pin::for_target("linux", "x86_64", "gnu").unwrap();
    let err = fetch::fetch(&npm, pin, "1.5.6-r.1", "1.5.6", &dir.path().join("tmp"), &lib)
        .expect_err("an unverified archive was accepted");
    assert!(err.contains("sha256 mismatch for the archive of @duckdb/node-bindings-linux-x64@1.5.6-r.1"), "{err}");
    assert!(err.contains(pin.archive_sha256) && err.contains("agents/duckdb/build/pin.rs"), "{err}");
    assert!(!lib.exists(), "the unverified library was cached");
}

#[test]
fn the_pins_are_checked_against_real_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"abc").unwrap();
    // sha256("abc"), FIPS 180-2 appendix B.1.
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(pin::sha256_file(&file).unwrap(), abc);
    assert!(pin::check("a test file", &file, abc).is_ok());
    let err = pin::check("a test file", &file, &"0".repeat(64)).unwrap_err();
    assert!(err.contains(abc), "the message names the actual digest: {err}");
    // The library this build links (when it came from the cache, as on this machine) is the pinned one.
    let cached = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/tern/libduckdb/1.5.6/x86_64-unknown-linux-gnu/libduckdb.so"));
    if let Some(lib) = cached.filter(|p| p.is_file() && std::env::var_os("TERN_DUCKDB_CACHE").is_none()) {
        pin::check("the cached", &lib, pin::for_target("linux", "x86_64", "gnu").unwrap().library_sha256).unwrap();
    }
}
