//! Task inputs as the text `{{.inputs.NAME}}` expands to.
//!
//! - string → itself; integer, float, boolean → their JSON text (`3`, `1.5`, `true`);
//!   datetime → ISO 8601; duration → seconds (`90.0`); none → empty text;
//! - file, directory, dataframe, schema → a local path when the data store is a local
//!   directory (so programs can open it), otherwise its URI;
//! - lists, maps, structs, dicts → compact JSON text.
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::prelude::DataStore;
use tern_type_transformers::render::literal_to_json;
use tern_type_transformers::{FlyteDirectory, FlyteFile, FlyteType, StructuredDataset};

pub fn input_text(literal: &core::Literal, store: &dyn DataStore) -> String {
    if let Some(LitValue::Scalar(scalar)) = literal.value.as_ref() {
        let uri = match scalar.value.as_ref() {
            Some(ScalarValue::Blob(_)) => FlyteFile::from_literal(literal)
                .map(|f| f.uri)
                .or_else(|_| FlyteDirectory::from_literal(literal).map(|d| d.uri))
                .ok(),
            Some(ScalarValue::StructuredDataset(_) | ScalarValue::Schema(_)) => {
                StructuredDataset::from_literal(literal).map(|d| d.uri).ok()
            }
            Some(ScalarValue::Union(u)) => return u.value.as_deref().map(|v| input_text(v, store)).unwrap_or_default(),
            _ => None,
        };
        if let Some(uri) = uri {
            return store.local_path(&uri).map(|p| p.display().to_string()).unwrap_or(uri);
        }
    }
    match literal_to_json(literal) {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::core::primitive::Value as P;
    use tern_agent_api::prelude::LocalDataStore;

    fn scalar(v: ScalarValue) -> core::Literal {
        core::Literal { value: Some(LitValue::Scalar(Box::new(core::Scalar { value: Some(v) }))), ..Default::default() }
    }

    fn prim(v: P) -> core::Literal {
        scalar(ScalarValue::Primitive(core::Primitive { value: Some(v) }))
    }

    #[test]
    fn renders_inputs_as_text() {
        let store = LocalDataStore::new("/data");
        assert_eq!(input_text(&prim(P::StringValue("a b".into())), &store), "a b");
        assert_eq!(input_text(&prim(P::Integer(-3)), &store), "-3");
        assert_eq!(input_text(&prim(P::FloatValue(1.5)), &store), "1.5");
        assert_eq!(input_text(&prim(P::Boolean(false)), &store), "false");
        assert_eq!(input_text(&scalar(ScalarValue::NoneType(core::Void {})), &store), "");
        let blob = scalar(ScalarValue::Blob(core::Blob { uri: "in/x.csv".into(), metadata: None }));
        assert_eq!(input_text(&blob, &store), "/data/in/x.csv");
        let remote = scalar(ScalarValue::Blob(core::Blob { uri: "s3://b/x.csv".into(), metadata: None }));
        assert_eq!(input_text(&remote, &store), "s3://b/x.csv");
        let list = core::Literal {
            value: Some(LitValue::Collection(core::LiteralCollection { literals: vec![prim(P::Integer(1)), prim(P::Integer(2))] })),
            ..Default::default()
        };
        assert_eq!(input_text(&list, &store), "[1,2]");
    }
}
