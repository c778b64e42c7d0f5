//! Turns what the command wrote into typed output literals.
use std::path::{Path, PathBuf};

use tern_agent_api::core;
use tern_agent_api::prelude::{join_uri, AgentError, DataStore};
use tern_type_transformers::{FlyteFile, FlyteType};

use crate::codes;
use crate::spec::{Kind, OutputSpec, Source};

/// Text outputs larger than this must be declared as files.
const MAX_TEXT: u64 = 16 * 1024 * 1024;

fn bad_output(name: &str, message: impl std::fmt::Display) -> AgentError {
    AgentError::user(codes::BAD_OUTPUT, format!("output {name:?}: {message}"))
}

/// Where the command's results are.
pub struct RunFiles<'a> {
    pub workdir: &'a Path,
    pub stdout: &'a Path,
}

pub async fn collect(
    specs: &[OutputSpec],
    files: &RunFiles<'_>,
    store: &dyn DataStore,
    output_prefix: &str,
) -> Result<core::LiteralMap, AgentError> {
    let mut literals = std::collections::BTreeMap::new();
    for spec in specs {
        let (path, label) = match &spec.source {
            Source::Stdout => (files.stdout.to_path_buf(), "stdout".to_owned()),
            Source::File(rel) => (files.workdir.join(rel), rel.display().to_string()),
        };
        let literal = match &spec.kind {
            Kind::File(blob_type) => upload(spec, &path, &label, blob_type, store, output_prefix).await?,
            kind => parse_text(&spec.name, kind, read_text(&spec.name, &path, &label).await?.trim())?,
        };
        literals.insert(spec.name.clone(), literal);
    }
    Ok(core::LiteralMap { literals })
}

async fn read_text(name: &str, path: &Path, label: &str) -> Result<String, AgentError> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| missing(name, label, e))?;
    if meta.len() > MAX_TEXT {
        return Err(bad_output(
            name,
            format!("{label} holds {} bytes, too much for a value output; declare the output as a file", meta.len()),
        ));
    }
    let bytes = tokio::fs::read(path).await.map_err(|e| missing(name, label, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn missing(name: &str, label: &str, e: std::io::Error) -> AgentError {
    if e.kind() == std::io::ErrorKind::NotFound {
        bad_output(name, format!("the command did not write {label} (paths are relative to the working directory)"))
    } else {
        bad_output(name, format!("cannot read {label}: {e}"))
    }
}

fn parse_text(name: &str, kind: &Kind, text: &str) -> Result<core::Literal, AgentError> {
    let shown = || {
        let cut: String = text.chars().take(80).collect();
        if cut.len() < text.len() { format!("{cut:?}…") } else { format!("{cut:?}") }
    };
    let value = match kind {
        Kind::String => text.to_owned().to_literal(),
        Kind::Integer => text
            .parse::<i64>()
            .map_err(|_| bad_output(name, format!("expected an integer, the command wrote {}", shown())))?
            .to_literal(),
        Kind::Float => text
            .parse::<f64>()
            .map_err(|_| bad_output(name, format!("expected a number, the command wrote {}", shown())))?
            .to_literal(),
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true.to_literal(),
            "false" | "0" | "no" => false.to_literal(),
            _ => return Err(bad_output(name, format!("expected true or false, the command wrote {}", shown()))),
        },
        Kind::Struct => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(object @ serde_json::Value::Object(_)) => object.to_literal(),
            Ok(_) => return Err(bad_output(name, "expected a JSON object ({...}) for a struct output")),
            Err(e) => return Err(bad_output(name, format!("expected a JSON object, the text is not JSON ({e})"))),
        },
        Kind::File(_) => return Err(bad_output(name, "a file output has no text form")),
    };
    value.map_err(|e| bad_output(name, e))
}

async fn upload(
    spec: &OutputSpec,
    path: &Path,
    label: &str,
    blob_type: &core::BlobType,
    store: &dyn DataStore,
    output_prefix: &str,
) -> Result<core::Literal, AgentError> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| missing(&spec.name, label, e))?;
    if !meta.is_file() {
        return Err(bad_output(&spec.name, format!("{label} is not a regular file")));
    }
    let file_name = match &spec.source {
        Source::Stdout => PathBuf::from("stdout.txt"),
        Source::File(rel) => rel.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(&spec.name)),
    };
    let uri = join_uri(output_prefix, &format!("{}/{}", spec.name, file_name.display()));
    FlyteFile::upload(store, path, &uri).await?;
    // The literal keeps the uri under the output prefix as given (not the store's canonical
    // form) and the declared blob type's format as written.
    let file = FlyteFile { uri, format: blob_type.format.clone() };
    file.to_literal().map_err(AgentError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::core::primitive::Value as P;
    use tern_type_transformers::literals::primitive;

    #[test]
    fn parses_declared_kinds_and_names_bad_text() {
        assert_eq!(parse_text("n", &Kind::Integer, "42").unwrap(), primitive(P::Integer(42)));
        assert_eq!(parse_text("f", &Kind::Float, "2.5").unwrap(), primitive(P::FloatValue(2.5)));
        assert_eq!(parse_text("b", &Kind::Boolean, "True").unwrap(), primitive(P::Boolean(true)));
        let e = parse_text("n", &Kind::Integer, "abc").unwrap_err();
        assert_eq!(e.code, codes::BAD_OUTPUT);
        assert!(e.message.contains("\"n\"") && e.message.contains("\"abc\""), "{e}");
        assert!(parse_text("s", &Kind::Struct, "[1]").is_err());
        assert!(parse_text("s", &Kind::Struct, "{\"a\": 1}").is_ok());
        assert!(parse_text("b", &Kind::Boolean, "maybe").is_err());
    }
}
