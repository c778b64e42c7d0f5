//! Where task inputs and outputs live: a local directory by default.
//!
//! URIs are `file:///abs/path`, absolute paths, or paths relative to the store's root.
//! Other schemes (`s3://`, `gs://`) are refused with a clear error until a store for them
//! is configured.
//!
//! A store serving remote callers is **confined** ([`LocalDataStore::confined`]): every
//! path must lie under its root or another allowed root, after following symlinks, and
//! `..` is refused outright, so a task cannot make the gateway read or write elsewhere.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{codes, AgentError};

#[derive(Debug, thiserror::Error)]
pub enum DataStoreError {
    #[error("[{}] no object at {uri}", codes::DATA_NOT_FOUND)]
    NotFound { uri: String },
    #[error("[{}] cannot access {uri}: {source}", codes::DATA_IO)]
    Io { uri: String, source: std::io::Error },
    #[error("[{}] unsupported data store URI {uri:?}: this data store handles {handles}", codes::DATA_UNSUPPORTED_URI)]
    UnsupportedUri { uri: String, handles: &'static str },
    #[error("[{}] {uri:?} is outside the data store's allowed roots ({roots}){why}", codes::DATA_OUTSIDE_ROOTS)]
    OutsideRoots { uri: String, roots: String, why: &'static str },
}

impl From<DataStoreError> for AgentError {
    fn from(e: DataStoreError) -> Self {
        let msg = e.to_string();
        let msg = msg.split_once("] ").map(|(_, m)| m.to_owned()).unwrap_or(msg);
        match e {
            DataStoreError::NotFound { .. } => AgentError::not_found(codes::DATA_NOT_FOUND, msg),
            DataStoreError::Io { .. } => AgentError::unavailable(codes::DATA_IO, msg),
            DataStoreError::UnsupportedUri { .. } => AgentError::invalid_argument(codes::DATA_UNSUPPORTED_URI, msg),
            DataStoreError::OutsideRoots { .. } => AgentError::permission_denied(codes::DATA_OUTSIDE_ROOTS, msg),
        }
    }
}

/// Object storage used by agents and the engine.
#[async_trait]
pub trait DataStore: Send + Sync + std::fmt::Debug {
    async fn read(&self, uri: &str) -> Result<Bytes, DataStoreError>;
    async fn write(&self, uri: &str, data: Bytes) -> Result<(), DataStoreError>;
    async fn exists(&self, uri: &str) -> Result<bool, DataStoreError>;

    /// Every object under `prefix`, recursively, as URIs in the form `prefix` was given in
    /// (`prefix` is a directory: `a/b` lists `a/b/x` and `a/b/c/y`, not `a/bc`), sorted.
    /// A prefix with nothing under it lists as empty, not as an error.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, DataStoreError> {
        Err(DataStoreError::UnsupportedUri {
            uri: prefix.to_owned(),
            handles: "reading and writing objects but not listing them",
        })
    }

    /// Copies a local file into the store.
    async fn upload_file(&self, local: &Path, uri: &str) -> Result<(), DataStoreError> {
        let data = tokio::fs::read(local)
            .await
            .map_err(|source| DataStoreError::Io { uri: local.display().to_string(), source })?;
        self.write(uri, data.into()).await
    }

    /// The local filesystem path behind `uri`, when the store is a local directory:
    /// lets engines such as DuckDB read and write in place. Refused (naming why) for
    /// remote stores and for paths outside a confined store's roots.
    fn local_path(&self, uri: &str) -> Result<PathBuf, DataStoreError> {
        Err(DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: "remote objects, not local paths" })
    }

    /// The URI that an absolute local path or relative key resolves to.
    fn canonical_uri(&self, uri: &str) -> String {
        uri.to_owned()
    }
}

/// Joins a prefix and a name with exactly one `/`.
pub fn join_uri(prefix: &str, name: &str) -> String {
    format!("{}/{}", prefix.trim_end_matches('/'), name.trim_start_matches('/'))
}

/// A directory on the local filesystem.
#[derive(Debug, Clone)]
pub struct LocalDataStore {
    root: PathBuf,
    /// `Some`: only paths under these (canonical) directories are served.
    confined_to: Option<Vec<PathBuf>>,
}

impl LocalDataStore {
    /// A store that serves any local path (embedded use: the caller is the machine's user).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Self { root, confined_to: None }
    }

    /// A store that serves only paths under `root` and `also` (after following symlinks;
    /// `..` is refused). The root is created if missing, so it can be resolved.
    pub fn confined(root: impl Into<PathBuf>, also: &[PathBuf]) -> Self {
        let mut store = Self::new(root);
        let _ = std::fs::create_dir_all(&store.root);
        let mut roots = vec![canonical_or_absolute(&store.root)];
        roots.extend(also.iter().map(|p| canonical_or_absolute(p)));
        store.confined_to = Some(roots);
        store
    }

    /// The directories paths must lie under, when confined.
    pub fn allowed_roots(&self) -> Option<&[PathBuf]> {
        self.confined_to.as_deref()
    }

    pub fn shared(root: impl Into<PathBuf>) -> Arc<dyn DataStore> {
        Arc::new(Self::new(root))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, uri: &str) -> Result<PathBuf, DataStoreError> {
        let path = if let Some(rest) = uri.strip_prefix("file://") {
            PathBuf::from(rest)
        } else if uri.contains("://") {
            return Err(DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: "file:// URIs and local paths" });
        } else {
            let p = Path::new(uri);
            if p.is_absolute() {
                p.to_owned()
            } else {
                self.root.join(p)
            }
        };
        match &self.confined_to {
            None => Ok(path),
            Some(roots) => confine(uri, path, roots),
        }
    }
}

fn canonical_or_absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()))
}

/// `path` if it lies under one of `roots` once symlinks are followed; `..` is refused
/// before anything is resolved.
fn confine(uri: &str, path: PathBuf, roots: &[PathBuf]) -> Result<PathBuf, DataStoreError> {
    let refuse = |why: &'static str| DataStoreError::OutsideRoots {
        uri: uri.to_owned(),
        roots: roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", "),
        why,
    };
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(refuse(": `..` is not allowed in data store paths"));
    }
    // Resolve the longest existing ancestor (following symlinks); the rest does not exist
    // yet, so it cannot be a link.
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    let resolved = loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => break real,
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => return Err(refuse("")),
            },
        }
    };
    let real = rest.iter().rev().fold(resolved, |acc, name| acc.join(name));
    if roots.iter().any(|root| real.starts_with(root)) {
        Ok(path)
    } else if real != path {
        Err(refuse(": a symlink on the way leads outside them"))
    } else {
        Err(refuse(""))
    }
}

fn io_err(uri: &str, source: std::io::Error) -> DataStoreError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DataStoreError::NotFound { uri: uri.to_owned() }
    } else {
        DataStoreError::Io { uri: uri.to_owned(), source }
    }
}

#[async_trait]
impl DataStore for LocalDataStore {
    async fn read(&self, uri: &str) -> Result<Bytes, DataStoreError> {
        let path = self.path(uri)?;
        tokio::fs::read(&path).await.map(Bytes::from).map_err(|e| io_err(uri, e))
    }

    async fn write(&self, uri: &str, data: Bytes) -> Result<(), DataStoreError> {
        let path = self.path(uri)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| io_err(uri, e))?;
        }
        // Write then rename so a reader never sees a half-written object. The temporary name
        // is unique per write, so concurrent writes of one object (a repeated CreateTask of
        // the same attempt) each rename a complete file instead of racing on one.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
        tokio::fs::write(&tmp, &data).await.map_err(|e| io_err(uri, e))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| io_err(uri, e))
    }

    async fn exists(&self, uri: &str) -> Result<bool, DataStoreError> {
        let path = self.path(uri)?;
        tokio::fs::try_exists(&path).await.map_err(|e| io_err(uri, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, DataStoreError> {
        let root = self.path(prefix)?;
        let mut out = Vec::new();
        // Iterative walk (no async recursion); symlinks are followed like `read` follows them.
        let mut pending = vec![(root, String::new())];
        while let Some((dir, rel)) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                // A missing prefix (or a plain file) holds no objects.
                Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                    continue
                }
                Err(e) => return Err(io_err(prefix, e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(|e| io_err(prefix, e))? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child_rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                let meta = match tokio::fs::metadata(entry.path()).await {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // removed meanwhile, or a dangling link
                    Err(e) => return Err(io_err(prefix, e)),
                };
                if meta.is_dir() {
                    pending.push((entry.path(), child_rel));
                } else {
                    out.push(join_uri(prefix, &child_rel));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn local_path(&self, uri: &str) -> Result<PathBuf, DataStoreError> {
        self.path(uri)
    }

    fn canonical_uri(&self, uri: &str) -> String {
        match self.path(uri) {
            // A plain absolute path, as flytekit writes local URIs (it cannot read blobs
            // given as `file://` URIs).
            Ok(p) => p.display().to_string(),
            Err(_) => uri.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_reads_and_reports_missing_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDataStore::new(dir.path());
        store.write("a/b/outputs.pb", Bytes::from_static(b"xyz")).await.unwrap();
        assert_eq!(store.read("a/b/outputs.pb").await.unwrap(), Bytes::from_static(b"xyz"));
        let uri = store.canonical_uri("a/b/outputs.pb");
        assert!(uri.starts_with('/') && uri.ends_with("a/b/outputs.pb"), "{uri}");
        assert_eq!(store.read(&format!("file://{uri}")).await.unwrap(), Bytes::from_static(b"xyz"));
        assert_eq!(store.read(&uri).await.unwrap(), Bytes::from_static(b"xyz"));
        assert!(matches!(store.read("nope").await, Err(DataStoreError::NotFound { .. })));
        let err = store.read("s3://bucket/key").await.unwrap_err();
        assert!(err.to_string().contains("s3://bucket/key"));
        assert_eq!(AgentError::from(err).code, codes::DATA_UNSUPPORTED_URI);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_of_one_object_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalDataStore::new(dir.path()));
        let writes: Vec<_> = (0..16u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.write("job/greeting.txt", Bytes::from(vec![i; 4096])).await })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
        let data = store.read("job/greeting.txt").await.unwrap();
        assert!(data.len() == 4096 && data.iter().all(|b| *b == data[0]), "one whole write wins");
        assert_eq!(store.list("job").await.unwrap(), ["job/greeting.txt"], "no temporary file is left");
    }

    #[tokio::test]
    async fn lists_objects_recursively_in_the_form_of_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDataStore::new(dir.path());
        for key in ["d/x", "d/sub/y", "d/sub/deeper/z", "dx/not-under-d", "other"] {
            store.write(key, Bytes::from_static(b"1")).await.unwrap();
        }
        assert_eq!(store.list("d").await.unwrap(), ["d/sub/deeper/z", "d/sub/y", "d/x"]);
        assert_eq!(store.list("d/").await.unwrap(), ["d/sub/deeper/z", "d/sub/y", "d/x"]);
        let abs = store.canonical_uri("d/sub");
        assert_eq!(store.list(&abs).await.unwrap(), [format!("{abs}/deeper/z"), format!("{abs}/y")]);
        for uri in store.list(&abs).await.unwrap() {
            assert_eq!(store.read(&uri).await.unwrap(), Bytes::from_static(b"1"));
        }
        assert!(store.list("missing").await.unwrap().is_empty());
        assert!(store.list("other").await.unwrap().is_empty(), "a file is not a prefix");
        assert!(matches!(store.list("s3://b/k").await, Err(DataStoreError::UnsupportedUri { .. })));
    }

    #[tokio::test]
    async fn a_confined_store_refuses_paths_outside_its_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let shared = dir.path().join("shared");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "no").unwrap();
        std::fs::write(shared.join("ref.csv"), "a,b").unwrap();
        let store = LocalDataStore::confined(&root, std::slice::from_ref(&shared));

        store.write("run/1/outputs.pb", Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(store.read("run/1/outputs.pb").await.unwrap(), Bytes::from_static(b"ok"));
        let abs = store.canonical_uri("run/1/outputs.pb");
        assert_eq!(store.read(&abs).await.unwrap(), Bytes::from_static(b"ok"));
        assert_eq!(store.read(&format!("{}/ref.csv", shared.display())).await.unwrap(), Bytes::from_static(b"a,b"));

        let secret = outside.join("secret.txt").display().to_string();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        let cases = [
            (secret.clone(), ""),
            (format!("file://{secret}"), ""),
            ("/etc/passwd".to_owned(), ""),
            ("../outside/secret.txt".to_owned(), "`..`"),
            (format!("{}/../outside/secret.txt", root.display()), "`..`"),
            ("escape/secret.txt".to_owned(), "symlink"),
            ("escape/new-file".to_owned(), "symlink"),
        ];
        for (uri, why) in cases {
            let err = store.read(&uri).await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, DataStoreError::OutsideRoots { .. }), "{uri}: {text}");
            assert!(text.contains(codes::DATA_OUTSIDE_ROOTS) && text.contains(why), "{uri}: {text}");
            assert!(matches!(store.write(&uri, Bytes::from_static(b"x")).await, Err(DataStoreError::OutsideRoots { .. })));
            assert!(store.local_path(&uri).is_err());
            let agent_err = AgentError::from(err);
            assert_eq!(agent_err.grpc_code(), tonic::Code::PermissionDenied);
        }
        assert!(!outside.join("new-file").exists(), "nothing was written through the symlink");
        assert_eq!(std::fs::read_to_string(outside.join("secret.txt")).unwrap(), "no");
        // Unconfined (embedded) stores keep serving any local path.
        assert_eq!(LocalDataStore::new(&root).read(&secret).await.unwrap(), Bytes::from_static(b"no"));
    }
}
