//! `FlyteFile` and `FlyteDirectory`: Blob literals, as flytekit 1.16 writes them.
//!
//! flytekit's encoding (`flytekit/types/file/file.py`, `flytekit/types/directory/types.py`):
//! - a file is `Literal{scalar{blob{metadata{type{format, dimensionality: SINGLE}}, uri}}}`, a directory
//!   the same with `MULTIPART`; `format` is the *declared type's* format (`FlyteFile["csv"]` → `"csv"`,
//!   a leading `~`/`.` stripped, so `FlyteFile[TypeVar("csv")]` → `"csv"` too), `""` for a plain
//!   `FlyteFile`; the literal type is `LiteralType{blob{format, dimensionality}}`.
//! - the uri is the object's location: a file's own key (`s3://bucket/prefix/x.csv`), a directory's
//!   prefix (`s3://bucket/prefix`, whose objects are `prefix/<relative path>`).
//! - reading, flytekit also accepts the dataclass-attribute forms: a msgpack `Binary` or a generic
//!   `Struct` holding `{"path": uri}` (format then `""`); a blob of the other dimensionality is an error.
use std::path::{Component, Path, PathBuf};

use tern_agent_api::core;
use tern_agent_api::core::blob_type::BlobDimensionality;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::datastore::{join_uri, DataStore};

use crate::store::DataError;

/// A single file in a data store (flytekit's `FlyteFile`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FlyteFile {
    pub uri: String,
    /// The declared format (`"csv"`, …); `""` = any.
    pub format: String,
}

/// A directory of files under one prefix (flytekit's `FlyteDirectory`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FlyteDirectory {
    pub uri: String,
    /// The declared format of the files inside; `""` = any.
    pub format: String,
}

/// A blob format as flytekit normalizes `FlyteFile[fmt]`: surrounding blanks, then leading `~` and `.`
/// removed (`".csv"`, `"~csv"` → `"csv"`); case is kept.
pub fn normalize_format(format: &str) -> String {
    format.trim().trim_start_matches('~').trim_start_matches('.').to_owned()
}

/// The literal type of a file (`SINGLE`) or directory (`MULTIPART`) blob of `format`.
pub fn blob_literal_type(format: &str, dimensionality: BlobDimensionality) -> core::LiteralType {
    crate::types::blob(&normalize_format(format), dimensionality)
}

fn blob_literal(uri: &str, format: &str, dimensionality: BlobDimensionality) -> core::Literal {
    core::Literal {
        value: Some(LitValue::Scalar(Box::new(core::Scalar {
            value: Some(ScalarValue::Blob(core::Blob {
                metadata: Some(core::BlobMetadata {
                    r#type: Some(core::BlobType { format: format.to_owned(), dimensionality: dimensionality as i32 }),
                }),
                uri: uri.to_owned(),
            })),
        }))),
        ..Default::default()
    }
}

/// Why a literal is not a blob of the wanted dimensionality.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobLiteralError {
    /// Not a blob at all (nor a `{"path": …}` Binary/Struct); `found` names what it is.
    WrongKind { found: String },
    /// A blob, of the other dimensionality (a directory where a file is expected, or the reverse).
    WrongDimensionality { uri: String, found: BlobDimensionality },
    /// A Binary/Struct without a string `path`, or a Binary that is not msgpack.
    BadPayload { reason: String },
}

impl std::fmt::Display for BlobLiteralError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongKind { found } => write!(f, "{found}"),
            Self::WrongDimensionality { uri, found } => {
                let what = if *found == BlobDimensionality::Multipart { "a directory" } else { "a single file" };
                write!(f, "{uri} is {what} (blob dimensionality {})", found.as_str_name())
            }
            Self::BadPayload { reason } => write!(f, "{reason}"),
        }
    }
}

/// Reads `(uri, format)` of a blob literal of `want` dimensionality, accepting what flytekit accepts.
pub fn blob_from_literal(
    literal: &core::Literal,
    want: BlobDimensionality,
) -> Result<(String, String), BlobLiteralError> {
    let scalar = match &literal.value {
        Some(LitValue::Scalar(s)) => s,
        _ => return Err(BlobLiteralError::WrongKind { found: literal_kind(literal) }),
    };
    match &scalar.value {
        Some(ScalarValue::Blob(blob)) => {
            let ty = blob.metadata.as_ref().and_then(|m| m.r#type.clone()).unwrap_or_default();
            let found = BlobDimensionality::try_from(ty.dimensionality).unwrap_or(BlobDimensionality::Single);
            if found != want {
                return Err(BlobLiteralError::WrongDimensionality { uri: blob.uri.clone(), found });
            }
            Ok((blob.uri.clone(), ty.format))
        }
        Some(ScalarValue::Binary(binary)) => {
            let json = crate::msgpack::msgpack_to_json(&binary.value).map_err(|e| BlobLiteralError::BadPayload {
                reason: format!("Binary literal (tag {:?}) is not a msgpack {{\"path\": …}} map: {e}", binary.tag),
            })?;
            if binary.tag != crate::msgpack::MSGPACK_TAG {
                return Err(BlobLiteralError::BadPayload {
                    reason: format!("unsupported Binary literal tag {:?} (expected \"msgpack\")", binary.tag),
                });
            }
            path_of(&json).map(|p| (p, String::new()))
        }
        Some(ScalarValue::Generic(s)) => {
            path_of(&serde_json::Value::Object(crate::structs::struct_to_json(s))).map(|p| (p, String::new()))
        }
        _ => Err(BlobLiteralError::WrongKind { found: literal_kind(literal) }),
    }
}

fn path_of(json: &serde_json::Value) -> Result<String, BlobLiteralError> {
    match json.get("path") {
        Some(serde_json::Value::String(p)) => Ok(p.clone()),
        _ => Err(BlobLiteralError::BadPayload { reason: format!("expected a map with a string \"path\", got {json}") }),
    }
}

/// A short description of what a literal holds, for error messages.
pub fn literal_kind(literal: &core::Literal) -> String {
    match &literal.value {
        None => "an empty literal".to_owned(),
        Some(LitValue::Collection(_)) => "a collection".to_owned(),
        Some(LitValue::Map(_)) => "a map".to_owned(),
        Some(LitValue::OffloadedMetadata(m)) => format!("an offloaded literal at {}", m.uri),
        Some(LitValue::Scalar(s)) => match &s.value {
            None => "an empty scalar".to_owned(),
            Some(ScalarValue::Primitive(_)) => "a primitive".to_owned(),
            Some(ScalarValue::Blob(b)) => {
                let multipart = b
                    .metadata
                    .as_ref()
                    .and_then(|m| m.r#type.as_ref())
                    .is_some_and(|t| t.dimensionality == BlobDimensionality::Multipart as i32);
                format!("a {} blob", if multipart { "multipart" } else { "single" })
            }
            Some(ScalarValue::Binary(_)) => "a binary".to_owned(),
            Some(ScalarValue::Schema(_)) => "a schema".to_owned(),
            Some(ScalarValue::NoneType(_)) => "none".to_owned(),
            Some(ScalarValue::Error(_)) => "an error".to_owned(),
            Some(ScalarValue::Generic(_)) => "a generic struct".to_owned(),
            Some(ScalarValue::StructuredDataset(_)) => "a structured dataset".to_owned(),
            Some(ScalarValue::Union(_)) => "a union".to_owned(),
        },
    }
}

impl FlyteFile {
    /// A file of any format at `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), format: String::new() }
    }

    /// A file of `format` (normalized like flytekit: `".csv"` → `"csv"`).
    pub fn with_format(uri: impl Into<String>, format: &str) -> Self {
        Self { uri: uri.into(), format: normalize_format(format) }
    }

    /// The literal type of `FlyteFile[format]`.
    pub fn literal_type_for(format: &str) -> core::LiteralType {
        blob_literal_type(format, BlobDimensionality::Single)
    }

    /// This file as a Blob literal (no I/O).
    pub fn to_blob_literal(&self) -> core::Literal {
        blob_literal(&self.uri, &self.format, BlobDimensionality::Single)
    }

    /// Reads a file literal (no I/O).
    pub fn from_blob_literal(literal: &core::Literal) -> Result<Self, BlobLiteralError> {
        blob_from_literal(literal, BlobDimensionality::Single).map(|(uri, format)| Self { uri, format })
    }

    /// Copies the local file `local_path` to `remote_uri` in `store`; the result points at the
    /// store's canonical form of `remote_uri` (an absolute path for local stores, as flytekit writes).
    pub async fn upload(store: &dyn DataStore, local_path: &Path, remote_uri: &str) -> Result<Self, DataError> {
        let meta = tokio::fs::metadata(local_path).await.map_err(|source| DataError::LocalIo {
            action: "upload",
            path: local_path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(DataError::LocalIo {
                action: "upload",
                path: local_path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        store.upload_file(local_path, remote_uri).await?;
        Ok(Self::new(store.canonical_uri(remote_uri)))
    }

    /// Copies the file to `local_path` (parent directories are created). A missing object is
    /// [`DataError::Missing`] naming the uri.
    pub async fn download(&self, store: &dyn DataStore, local_path: &Path) -> Result<(), DataError> {
        let data = store.read(&self.uri).await.map_err(|e| DataError::from_store("file", e))?;
        write_local(local_path, &data).await
    }
}

impl FlyteDirectory {
    /// A directory of any format at `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), format: String::new() }
    }

    pub fn with_format(uri: impl Into<String>, format: &str) -> Self {
        Self { uri: uri.into(), format: normalize_format(format) }
    }

    /// The literal type of `FlyteDirectory[format]`.
    pub fn literal_type_for(format: &str) -> core::LiteralType {
        blob_literal_type(format, BlobDimensionality::Multipart)
    }

    pub fn to_blob_literal(&self) -> core::Literal {
        blob_literal(&self.uri, &self.format, BlobDimensionality::Multipart)
    }

    pub fn from_blob_literal(literal: &core::Literal) -> Result<Self, BlobLiteralError> {
        blob_from_literal(literal, BlobDimensionality::Multipart).map(|(uri, format)| Self { uri, format })
    }

    /// Copies every file under `local_dir` (recursively) to `remote_uri/<relative path>`.
    pub async fn upload_dir(store: &dyn DataStore, local_dir: &Path, remote_uri: &str) -> Result<Self, DataError> {
        let files = walk_local(local_dir).await?;
        for (path, rel) in files {
            store.upload_file(&path, &join_uri(remote_uri, &rel)).await?;
        }
        Ok(Self::new(store.canonical_uri(remote_uri).trim_end_matches('/').to_owned()))
    }

    /// The URIs of the files in this directory, recursively, sorted.
    pub async fn list(&self, store: &dyn DataStore) -> Result<Vec<String>, DataError> {
        Ok(store.list(&self.uri).await?)
    }

    /// Copies every object under the directory's uri to `local_dir/<relative path>` and returns
    /// the local paths. A uri with nothing under it that does not exist either is
    /// [`DataError::Missing`]; an object name that would escape `local_dir` is [`DataError::UnsafePath`].
    pub async fn download_dir(&self, store: &dyn DataStore, local_dir: &Path) -> Result<Vec<PathBuf>, DataError> {
        let objects = store.list(&self.uri).await?;
        if objects.is_empty() && !store.exists(&self.uri).await? {
            return Err(DataError::Missing { what: "directory", uri: self.uri.clone() });
        }
        tokio::fs::create_dir_all(local_dir).await.map_err(|source| DataError::LocalIo {
            action: "create",
            path: local_dir.to_owned(),
            source,
        })?;
        let base = format!("{}/", self.uri.trim_end_matches('/'));
        let mut out = Vec::with_capacity(objects.len());
        for uri in objects {
            let rel = uri
                .strip_prefix(&base)
                .filter(|rel| is_safe_relative(rel))
                .ok_or_else(|| DataError::UnsafePath { uri: uri.clone(), dir: self.uri.clone() })?;
            let data = store.read(&uri).await.map_err(|e| DataError::from_store("file", e))?;
            let path = local_dir.join(rel);
            write_local(&path, &data).await?;
            out.push(path);
        }
        Ok(out)
    }
}

/// `a/b.txt` yes; `../x`, `/x`, `a//b`, `./a` no.
fn is_safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && rel.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)))
}

async fn write_local(path: &Path, data: &[u8]) -> Result<(), DataError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await.map_err(|source| DataError::LocalIo {
            action: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    tokio::fs::write(path, data).await.map_err(|source| DataError::LocalIo {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

/// Every regular file under `dir`, with its `/`-separated path relative to `dir`, sorted.
async fn walk_local(dir: &Path) -> Result<Vec<(PathBuf, String)>, DataError> {
    let meta = tokio::fs::metadata(dir).await.map_err(|source| DataError::LocalIo {
        action: "upload",
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DataError::LocalIo {
            action: "upload",
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_owned(), String::new())];
    while let Some((d, rel)) = pending.pop() {
        let io = |source| DataError::LocalIo { action: "read", path: d.clone(), source };
        let mut entries = tokio::fs::read_dir(&d).await.map_err(io)?;
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let meta = tokio::fs::metadata(entry.path()).await.map_err(io)?;
            if meta.is_dir() {
                pending.push((entry.path(), child));
            } else if meta.is_file() {
                out.push((entry.path(), child));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn blob_transform_error(expected: &str, rust_type: &str, e: BlobLiteralError) -> crate::error::TransformError {
    use crate::error::TransformError;
    match e {
        BlobLiteralError::WrongKind { found } => TransformError::wrong_kind(expected, found),
        e @ BlobLiteralError::WrongDimensionality { .. } => TransformError::wrong_kind(expected, e),
        BlobLiteralError::BadPayload { reason } => {
            TransformError::MalformedMsgpack { rust_type: rust_type.to_owned(), reason }
        }
    }
}

/// `LiteralType{blob{format: "", SINGLE}}` (a plain `FlyteFile`; see [`FlyteFile::literal_type_for`]);
/// the literal carries the value's own `format`.
impl crate::transformer::FlyteType for FlyteFile {
    fn literal_type() -> core::LiteralType {
        Self::literal_type_for("")
    }

    fn to_literal(&self) -> Result<core::Literal, crate::error::TransformError> {
        Ok(self.to_blob_literal())
    }

    fn from_literal(literal: &core::Literal) -> Result<Self, crate::error::TransformError> {
        Self::from_blob_literal(literal).map_err(|e| blob_transform_error("a file (single blob)", "FlyteFile", e))
    }
}

/// `LiteralType{blob{format: "", MULTIPART}}` (a plain `FlyteDirectory`).
impl crate::transformer::FlyteType for FlyteDirectory {
    fn literal_type() -> core::LiteralType {
        Self::literal_type_for("")
    }

    fn to_literal(&self) -> Result<core::Literal, crate::error::TransformError> {
        Ok(self.to_blob_literal())
    }

    fn from_literal(literal: &core::Literal) -> Result<Self, crate::error::TransformError> {
        Self::from_blob_literal(literal)
            .map_err(|e| blob_transform_error("a directory (multipart blob)", "FlyteDirectory", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_normalized_like_flytekit() {
        assert_eq!(normalize_format(" .csv"), "csv");
        assert_eq!(normalize_format("~csv"), "csv");
        assert_eq!(normalize_format("CSV"), "CSV");
        assert_eq!(normalize_format(""), "");
    }

    #[test]
    fn safe_relative_paths() {
        assert!(is_safe_relative("a/b.txt"));
        for bad in ["", "../x", "a/../../x", "/abs", "a//b", "./a", "a/."] {
            assert!(!is_safe_relative(bad), "{bad}");
        }
    }
}
