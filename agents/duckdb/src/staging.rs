//! Dataframes in a remote data store (`s3://…`, behind propeller): DuckDB reads and writes
//! local files only, so remote inputs are downloaded into the job's staging directory
//! before the query and remote outputs are written there and uploaded after it, all
//! through the data store (the same credentials and endpoint as every other agent).
//! Local inputs and outputs are still read and written in place.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::prelude::{core, join_uri, AgentError, DataStore};
use tern_type_transformers::StructuredDataset;

use crate::codes::{self, bad_input};
use crate::views;

/// The job's own scratch directory, removed with everything in it when dropped.
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// `<base>/tern-duckdb-<unique>`, created when first needed.
    pub fn under(base: &Path) -> Self {
        Self { dir: base.join(format!("tern-duckdb-{}", uuid::Uuid::new_v4().simple())) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where remote dataframe input `name` is downloaded.
    fn input_dir(&self, name: &str) -> PathBuf {
        self.dir.join("in").join(name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local file to upload to `uri` once the query has written it.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub file: PathBuf,
    pub uri: String,
}

/// Whether `uri` is served by the store as a remote object rather than a local path.
pub fn is_remote(store: &dyn DataStore, uri: &str) -> bool {
    matches!(store.local_path(uri), Err(DataStoreError::UnsupportedUri { .. }))
}

/// Downloads every remote dataframe input; returns the local directory of each.
pub async fn download_inputs(
    inputs: &core::LiteralMap,
    store: &dyn DataStore,
    staging: &Staging,
) -> Result<HashMap<String, PathBuf>, AgentError> {
    let mut staged = HashMap::new();
    for (name, sd) in views::dataframes(inputs)? {
        if sd.uri.is_empty() || !is_remote(store, &sd.uri) {
            continue;
        }
        let dir = staging.input_dir(&name);
        download(store, &name, &sd, &dir).await?;
        staged.insert(name, dir);
    }
    Ok(staged)
}

/// The data files of a dataset (a prefix, flytekit's layout) or the single object at its URI.
async fn download(store: &dyn DataStore, name: &str, sd: &StructuredDataset, dir: &Path) -> Result<(), AgentError> {
    let at = |e: DataStoreError| remote_error(e, &format!("dataframe input {name:?} at {:?}", sd.uri));
    tokio::fs::create_dir_all(dir).await.map_err(|e| codes::engine(format!("cannot create {}: {e}", dir.display())))?;
    let prefix = format!("{}/", sd.uri.trim_end_matches('/'));
    let mut objects: Vec<String> = store.list(&sd.uri).await.map_err(at)?;
    // Only the dataset's own files, as for a local directory: no nested folders, no
    // `.hidden` or `_marker` files (`_SUCCESS`, `.crc`).
    objects.retain(|uri| {
        let rest = uri.strip_prefix(&prefix).unwrap_or(uri);
        !rest.contains('/') && !rest.starts_with('.') && !rest.starts_with('_') && !rest.is_empty()
    });
    if objects.is_empty() {
        // Not a prefix: the URI names one object (or nothing, which reads as NotFound).
        objects.push(sd.uri.clone());
    }
    for uri in objects {
        let bytes = store.read(&uri).await.map_err(at)?;
        let file_name = uri.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("00000");
        let file = dir.join(file_name);
        tokio::fs::write(&file, &bytes)
            .await
            .map_err(|e| codes::engine(format!("cannot stage {uri} at {}: {e}", file.display())))?;
    }
    Ok(())
}

/// Uploads what the query wrote for remote outputs.
pub async fn upload_outputs(store: &dyn DataStore, uploads: &[Upload]) -> Result<(), AgentError> {
    for u in uploads {
        store.upload_file(&u.file, &u.uri).await.map_err(|e| remote_error(e, &format!("output {}", u.uri)))?;
    }
    Ok(())
}

/// The staging directory for remote dataframe output `name` and the URI it goes to.
pub fn output_location(staging: &Path, output_prefix: &str, name: &str) -> (PathBuf, String) {
    (staging.join("out").join(name), join_uri(output_prefix, name))
}

/// A store error while staging: an unsupported scheme is the user's (`TERN-Q005`), a
/// missing object a bad input, the rest the store's own classification.
fn remote_error(e: DataStoreError, what: &str) -> AgentError {
    match e {
        DataStoreError::UnsupportedUri { .. } => {
            AgentError::user(codes::UNSUPPORTED_LOCATION, format!("{what}: the data store cannot reach it ({e})"))
        }
        DataStoreError::NotFound { .. } => bad_input(format!("{what}: no such object")),
        _ => AgentError::from(e).context(what.to_owned()),
    }
}
