//! Where task inputs and outputs live: a local directory by default.
//!
//! URIs are `file:///abs/path`, absolute paths, or paths relative to the store's root.
//! Other schemes (`s3://`, `gs://`) are refused with a clear error until a store for them
//! is configured.
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
}

impl From<DataStoreError> for AgentError {
    fn from(e: DataStoreError) -> Self {
        let msg = e.to_string();
        let msg = msg.split_once("] ").map(|(_, m)| m.to_owned()).unwrap_or(msg);
        match e {
            DataStoreError::NotFound { .. } => AgentError::not_found(codes::DATA_NOT_FOUND, msg),
            DataStoreError::Io { .. } => AgentError::unavailable(codes::DATA_IO, msg),
            DataStoreError::UnsupportedUri { .. } => AgentError::invalid_argument(codes::DATA_UNSUPPORTED_URI, msg),
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
    /// lets engines such as DuckDB read and write in place.
    fn local_path(&self, _uri: &str) -> Option<PathBuf> {
        None
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
}

impl LocalDataStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Self { root }
    }

    pub fn shared(root: impl Into<PathBuf>) -> Arc<dyn DataStore> {
        Arc::new(Self::new(root))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, uri: &str) -> Result<PathBuf, DataStoreError> {
        if let Some(rest) = uri.strip_prefix("file://") {
            return Ok(PathBuf::from(rest));
        }
        if uri.contains("://") {
            return Err(DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: "file:// URIs and local paths" });
        }
        let p = Path::new(uri);
        Ok(if p.is_absolute() { p.to_owned() } else { self.root.join(p) })
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
        // Write then rename so a reader never sees a half-written object.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
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

    fn local_path(&self, uri: &str) -> Option<PathBuf> {
        self.path(uri).ok()
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
}
