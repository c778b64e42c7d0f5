//! Data stores by URI scheme, and the errors of moving blobs and datasets through them.
//!
//! [`DataStores`] is one [`DataStore`] that sends each URI where it belongs: `file://` URIs and
//! plain paths to a [`LocalDataStore`], `s3://bucket/key` to an S3 store (feature `s3`), and refuses
//! any other scheme with `TERN-D003` naming the URI.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tern_agent_api::datastore::{DataStore, DataStoreError, LocalDataStore};

#[cfg(feature = "s3")]
use crate::s3::{S3Config, S3DataStore};

/// Why a File, Directory or StructuredDataset could not be moved, read or written.
/// [`DataError::code`] gives the stable code; the message names the URI (and column) at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Nothing at the URI a literal points to.
    #[error("[TERN-T101] no {what} at {uri}")]
    Missing { what: &'static str, uri: String },
    /// The data store failed (its own code: TERN-D002 I/O, TERN-D003 unsupported URI).
    #[error(transparent)]
    Store(DataStoreError),
    /// A local file or directory given to upload or download to could not be used.
    #[error("[TERN-T102] cannot {action} {}: {source}", path.display())]
    LocalIo { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A declared column is not in a Parquet file.
    #[error("[TERN-T103] column {column:?} is declared but {uri} has no such column (it has: {available})")]
    MissingColumn { column: String, uri: String, available: String },
    /// A declared column's type does not match the column's type in a Parquet file.
    #[error("[TERN-T104] column {column:?} is declared as {declared} but {uri} stores it as {found}")]
    ColumnType { column: String, uri: String, declared: String, found: String },
    /// An object under a dataset's URI is not Parquet (or is corrupt).
    #[error("[TERN-T105] {uri} is not a readable Parquet file: {reason}")]
    NotParquet { uri: String, reason: String },
    /// An Arrow column type with no Flyte column type (writing a dataset).
    #[error("[TERN-T106] column {column:?} has Arrow type {arrow_type}, which has no Flyte column type")]
    UnsupportedColumn { column: String, arrow_type: String },
    /// Encoding Parquet failed (e.g. batches with different schemas).
    #[error("[TERN-T107] cannot write Parquet to {uri}: {reason}")]
    ParquetWrite { uri: String, reason: String },
    /// An object name under a directory would land outside the download directory (`..`, absolute).
    #[error("[TERN-T108] object {uri} is not inside the directory {dir} being downloaded")]
    UnsafePath { uri: String, dir: String },
    /// The Parquet files of one dataset disagree on a column's type.
    #[error("[TERN-T109] column {column:?} is {first} in {first_uri} but {other} in {other_uri}")]
    InconsistentFiles { column: String, first_uri: String, first: String, other_uri: String, other: String },
    /// A dataset in a format other than Parquet.
    #[error("[TERN-T110] {uri} is a {format:?} dataset; only Parquet datasets can be read and written")]
    UnsupportedFormat { uri: String, format: String },
}

impl DataError {
    /// The stable code reported with this error.
    pub fn code(&self) -> &'static str {
        use tern_agent_api::error::codes;
        match self {
            Self::Missing { .. } => "TERN-T101",
            Self::Store(DataStoreError::NotFound { .. }) => codes::DATA_NOT_FOUND,
            Self::Store(DataStoreError::Io { .. }) => codes::DATA_IO,
            Self::Store(DataStoreError::UnsupportedUri { .. }) => codes::DATA_UNSUPPORTED_URI,
            Self::Store(DataStoreError::OutsideRoots { .. }) => codes::DATA_OUTSIDE_ROOTS,
            Self::LocalIo { .. } => "TERN-T102",
            Self::MissingColumn { .. } => "TERN-T103",
            Self::ColumnType { .. } => "TERN-T104",
            Self::NotParquet { .. } => "TERN-T105",
            Self::UnsupportedColumn { .. } => "TERN-T106",
            Self::ParquetWrite { .. } => "TERN-T107",
            Self::UnsafePath { .. } => "TERN-T108",
            Self::InconsistentFiles { .. } => "TERN-T109",
            Self::UnsupportedFormat { .. } => "TERN-T110",
        }
    }

    /// Whether trying again may succeed (I/O to the store or the local disk); every other error
    /// is about the data or the request and stays.
    pub fn is_retryable(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Self::Store(DataStoreError::Io { .. }) => true,
            // A missing local path or one of the wrong kind stays so; other local I/O may pass.
            Self::LocalIo { source, .. } => !matches!(
                source.kind(),
                K::NotFound | K::InvalidInput | K::PermissionDenied | K::NotADirectory | K::IsADirectory
            ),
            _ => false,
        }
    }

    /// A store's `NotFound` becomes [`DataError::Missing`] naming what was looked for.
    pub(crate) fn from_store(what: &'static str, err: DataStoreError) -> Self {
        match err {
            DataStoreError::NotFound { uri } => Self::Missing { what, uri },
            other => Self::Store(other),
        }
    }
}

impl From<DataStoreError> for DataError {
    fn from(e: DataStoreError) -> Self {
        Self::Store(e)
    }
}

impl From<DataError> for tern_agent_api::error::AgentError {
    fn from(e: DataError) -> Self {
        use tern_agent_api::error::AgentError;
        let code = e.code();
        match e {
            DataError::Store(inner) => AgentError::from(inner),
            DataError::Missing { .. } => AgentError::not_found(code, strip_code(&e.to_string())),
            DataError::LocalIo { .. } if e.is_retryable() => AgentError::unavailable(code, strip_code(&e.to_string())),
            DataError::LocalIo { .. } => AgentError::internal(code, strip_code(&e.to_string())),
            other => AgentError::invalid_argument(code, strip_code(&other.to_string())),
        }
    }
}

impl From<DataError> for crate::error::TransformError {
    /// Data store failures keep their kind (retryable I/O, not found); the rest are invalid values.
    fn from(e: DataError) -> Self {
        match e {
            DataError::Store(inner) => Self::DataStore(inner),
            DataError::Missing { uri, .. } => Self::DataStore(DataStoreError::NotFound { uri }),
            other => Self::InvalidValue { expected: "data".to_owned(), reason: other.to_string() },
        }
    }
}

fn strip_code(msg: &str) -> String {
    msg.split_once("] ").map(|(_, m)| m.to_owned()).unwrap_or_else(|| msg.to_owned())
}

/// The scheme of a URI (`s3` of `s3://b/k`), `None` for a plain path.
pub fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

#[cfg(feature = "s3")]
const HANDLES: &str = "file:// URIs, local paths and s3://bucket/key URIs";
#[cfg(not(feature = "s3"))]
const HANDLES: &str = "file:// URIs and local paths (Tern was built without the `s3` feature)";

/// One data store for every URI scheme Tern supports.
#[derive(Debug, Clone)]
pub struct DataStores {
    local: LocalDataStore,
    #[cfg(feature = "s3")]
    s3: Arc<S3Slot>,
}

#[cfg(feature = "s3")]
#[derive(Debug)]
struct S3Slot {
    config: S3Config,
    store: tokio::sync::OnceCell<S3DataStore>,
}

enum Route<'a> {
    Local(&'a LocalDataStore),
    #[cfg(feature = "s3")]
    S3(&'a S3DataStore),
}

impl DataStores {
    /// Local paths resolve under `local_root`; S3 is configured from the environment
    /// ([`S3Config::from_env`]) when the first `s3://` URI is used.
    pub fn new(local_root: impl Into<PathBuf>) -> Self {
        Self::with_local(LocalDataStore::new(local_root))
    }

    /// Local paths go to `local` (e.g. a [`LocalDataStore::confined`] one).
    pub fn with_local(local: LocalDataStore) -> Self {
        Self {
            local,
            #[cfg(feature = "s3")]
            s3: Arc::new(S3Slot { config: S3Config::from_env(), store: tokio::sync::OnceCell::new() }),
        }
    }

    pub fn shared(local_root: impl Into<PathBuf>) -> Arc<dyn DataStore> {
        Arc::new(Self::new(local_root))
    }

    /// Uses `config` for `s3://` URIs (the client is still built lazily, on first use).
    #[cfg(feature = "s3")]
    pub fn with_s3(mut self, config: S3Config) -> Self {
        self.s3 = Arc::new(S3Slot { config, store: tokio::sync::OnceCell::new() });
        self
    }

    /// Uses an S3 store built elsewhere for `s3://` URIs.
    #[cfg(feature = "s3")]
    pub fn with_s3_store(mut self, store: S3DataStore) -> Self {
        self.s3 = Arc::new(S3Slot { config: S3Config::default(), store: tokio::sync::OnceCell::from(store) });
        self
    }

    pub fn local(&self) -> &LocalDataStore {
        &self.local
    }

    /// The S3 store, built on first use.
    #[cfg(feature = "s3")]
    pub async fn s3(&self) -> &S3DataStore {
        self.s3.store.get_or_init(|| S3DataStore::connect(&self.s3.config)).await
    }

    async fn route(&self, uri: &str) -> Result<Route<'_>, DataStoreError> {
        match uri_scheme(uri) {
            None | Some("file") => Ok(Route::Local(&self.local)),
            #[cfg(feature = "s3")]
            Some("s3") => Ok(Route::S3(self.s3().await)),
            Some(_) => Err(DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: HANDLES }),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $uri:expr, |$s:ident| $call:expr) => {
        match $self.route($uri).await? {
            Route::Local($s) => $call,
            #[cfg(feature = "s3")]
            Route::S3($s) => $call,
        }
    };
}

#[async_trait]
impl DataStore for DataStores {
    async fn read(&self, uri: &str) -> Result<Bytes, DataStoreError> {
        dispatch!(self, uri, |s| s.read(uri).await)
    }

    async fn write(&self, uri: &str, data: Bytes) -> Result<(), DataStoreError> {
        dispatch!(self, uri, |s| s.write(uri, data).await)
    }

    async fn exists(&self, uri: &str) -> Result<bool, DataStoreError> {
        dispatch!(self, uri, |s| s.exists(uri).await)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, DataStoreError> {
        dispatch!(self, prefix, |s| s.list(prefix).await)
    }

    async fn upload_file(&self, local: &Path, uri: &str) -> Result<(), DataStoreError> {
        dispatch!(self, uri, |s| s.upload_file(local, uri).await)
    }

    fn local_path(&self, uri: &str) -> Result<PathBuf, DataStoreError> {
        match uri_scheme(uri) {
            None | Some("file") => self.local.local_path(uri),
            _ => Err(DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: "remote objects, not local paths" }),
        }
    }

    fn canonical_uri(&self, uri: &str) -> String {
        match uri_scheme(uri) {
            None | Some("file") => self.local.canonical_uri(uri),
            _ => uri.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_schemes() {
        assert_eq!(uri_scheme("s3://b/k"), Some("s3"));
        assert_eq!(uri_scheme("file:///tmp/x"), Some("file"));
        assert_eq!(uri_scheme("/tmp/x"), None);
        assert_eq!(uri_scheme("rel/a://b"), None);
    }

    #[tokio::test]
    async fn routes_by_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let stores = DataStores::new(dir.path());
        stores.write("a/b", Bytes::from_static(b"x")).await.unwrap();
        let uri = stores.canonical_uri("a/b");
        assert!(uri.starts_with('/'), "{uri}");
        assert_eq!(stores.read(&uri).await.unwrap(), Bytes::from_static(b"x"));
        assert_eq!(stores.list("a").await.unwrap(), ["a/b"]);
        assert_eq!(stores.local_path("a/b").unwrap(), dir.path().join("a/b"));
        let err = stores.read("gs://bucket/key").await.unwrap_err();
        assert!(matches!(err, DataStoreError::UnsupportedUri { .. }));
        assert!(err.to_string().contains("gs://bucket/key"), "{err}");
        let e = DataError::from_store("file", DataStoreError::NotFound { uri: "s3://b/k".into() });
        assert_eq!(e.code(), "TERN-T101");
        assert!(e.to_string().contains("s3://b/k"));
    }

    #[test]
    fn classification_for_agents() {
        use tern_agent_api::error::{AgentError, ErrorOrigin, Retry};
        let missing = AgentError::from(DataError::Missing { what: "file", uri: "s3://b/k".into() });
        assert_eq!(
            (missing.origin, missing.retry, missing.code.as_ref()),
            (ErrorOrigin::User, Retry::Permanent, "TERN-T101")
        );
        let column = AgentError::from(DataError::ColumnType {
            column: "a".into(),
            uri: "u".into(),
            declared: "integer".into(),
            found: "Utf8".into(),
        });
        assert_eq!((column.origin, column.retry), (ErrorOrigin::User, Retry::Permanent));
        let io =
            DataError::Store(DataStoreError::Io { uri: "s3://b/k".into(), source: std::io::Error::other("reset") });
        assert!(io.is_retryable());
        let io = AgentError::from(io);
        assert_eq!((io.origin, io.retry, io.code.as_ref()), (ErrorOrigin::System, Retry::Retryable, "TERN-D002"));
        let local =
            |kind| DataError::LocalIo { action: "write", path: "/x".into(), source: std::io::Error::from(kind) };
        assert!(!local(std::io::ErrorKind::NotFound).is_retryable());
        assert!(local(std::io::ErrorKind::StorageFull).is_retryable());
        let gone = AgentError::from(local(std::io::ErrorKind::NotFound));
        assert_eq!((gone.origin, gone.retry), (ErrorOrigin::System, Retry::Permanent));
    }
}
