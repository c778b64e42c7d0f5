//! Dataframe inputs (StructuredDataset literals holding parquet) → views named after
//! the input, reading the files in place from the local data store, or from the job's
//! staging directory for inputs downloaded from a remote store (`staging.rs`).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::prelude::{core, AgentError, DataStore};
use tern_type_transformers::{FlyteType, StructuredDataset};

use crate::codes::{self, bad_input};
use crate::sql::{literal_list, quote_ident};
use core::literal::Value as LitValue;
use core::scalar::Value as ScalarValue;

/// One dataframe input, resolved to local files.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub name: String,
    pub files: Vec<PathBuf>,
    /// Directory (with trailing `/`) or single file DuckDB must be allowed to read.
    pub grant: Grant,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    Directory(String),
    File(String),
}

impl View {
    /// `CREATE VIEW "name" AS SELECT * FROM read_parquet([...])`
    pub fn create_sql(&self) -> String {
        let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        format!(
            "CREATE VIEW {} AS SELECT * FROM read_parquet({})",
            quote_ident(&self.name),
            literal_list(files.iter().map(String::as_str))
        )
    }
}

/// The dataframes among `inputs` (sorted by name).
pub fn dataframes(inputs: &core::LiteralMap) -> Result<Vec<(String, StructuredDataset)>, AgentError> {
    let mut names: Vec<&String> = inputs.literals.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if let Some(literal) = dataset(&inputs.literals[name]) {
            let sd = StructuredDataset::from_literal(literal)
                .map_err(|e| bad_input(format!("dataframe input {name:?}: {e}")))?;
            out.push((name.clone(), sd));
        }
    }
    Ok(out)
}

/// The dataframes among `inputs`, as views (sorted by name); `staged` holds the local
/// directory of each input downloaded from a remote store.
pub fn from_inputs(
    inputs: &core::LiteralMap,
    store: &dyn DataStore,
    staged: &HashMap<String, PathBuf>,
) -> Result<Vec<View>, AgentError> {
    dataframes(inputs)?.iter().map(|(name, sd)| resolve(name, sd, store, staged.get(name))).collect()
}

/// The StructuredDataset literal in `lit`, looking through unions (`Optional[DataFrame]`).
fn dataset(lit: &core::Literal) -> Option<&core::Literal> {
    match &lit.value {
        Some(LitValue::Scalar(s)) => match &s.value {
            Some(ScalarValue::StructuredDataset(_)) => Some(lit),
            Some(ScalarValue::Union(u)) => u.value.as_deref().and_then(dataset),
            _ => None,
        },
        _ => None,
    }
}

fn resolve(
    name: &str,
    sd: &StructuredDataset,
    store: &dyn DataStore,
    staged: Option<&PathBuf>,
) -> Result<View, AgentError> {
    let format = sd.format.as_str();
    if !(format.is_empty() || format.eq_ignore_ascii_case("parquet")) {
        return Err(bad_input(format!("dataframe input {name:?} has format {format:?}; only parquet is supported")));
    }
    if sd.uri.is_empty() {
        return Err(bad_input(format!("dataframe input {name:?} has no uri")));
    }
    let path = match staged {
        Some(dir) => dir.clone(),
        None => store.local_path(&sd.uri).map_err(|e| match e {
            DataStoreError::OutsideRoots { .. } => AgentError::from(e).context(format!("dataframe input {name:?}")),
            _ => AgentError::user(
                codes::UNSUPPORTED_LOCATION,
                format!("dataframe input {name:?} is at {:?}, which the data store cannot reach ({e})", sd.uri),
            ),
        })?,
    };
    let meta = std::fs::metadata(&path)
        .map_err(|e| bad_input(format!("dataframe input {name:?}: cannot read {:?} ({e})", sd.uri)))?;
    if meta.is_file() {
        return Ok(View {
            name: name.to_owned(),
            files: vec![path.clone()],
            grant: Grant::File(path.display().to_string()),
        });
    }
    let files = data_files(&path)
        .map_err(|e| bad_input(format!("dataframe input {name:?}: cannot list {:?} ({e})", sd.uri)))?;
    if files.is_empty() {
        return Err(bad_input(format!("dataframe input {name:?}: no data files in {:?}", sd.uri)));
    }
    Ok(View { name: name.to_owned(), files, grant: Grant::Directory(format!("{}/", path.display())) })
}

/// Regular files of a dataset directory, sorted, skipping `.hidden` and `_marker` files
/// (`_SUCCESS`, `.crc`) that writers such as Spark leave next to the data.
fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') || !entry.file_type()?.is_file() {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_sql_quotes_name_and_paths() {
        let v = View {
            name: "my \"df\"".into(),
            files: vec![PathBuf::from("/d/it's/00000")],
            grant: Grant::Directory("/d/it's/".into()),
        };
        assert_eq!(
            v.create_sql(),
            "CREATE VIEW \"my \"\"df\"\"\" AS SELECT * FROM read_parquet(['/d/it''s/00000']::VARCHAR[])"
        );
    }

    #[test]
    fn lists_data_files_only() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["00001", "00000", "_SUCCESS", ".00000.crc"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let names: Vec<_> = data_files(dir.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["00000", "00001"]);
    }
}
