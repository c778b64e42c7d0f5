//! Python `bytes` as flytekit writes them at the top level: a `PythonPickle` blob.
//!
//! flytekit has no transformer for `bytes`, so it falls back to pickling: the value is
//! `cloudpickle.dumps(value)` (pickle protocol 5) in a file uploaded to the raw data
//! prefix, and the literal is `scalar.blob {uri, metadata.type {format: "PythonPickle"}}`;
//! the type is that blob type with `metadata {"python_class_name": "<class 'bytes'>"}`.
//! [`pickle_bytes`] writes exactly the bytes cloudpickle 3.1 writes for a `bytes` value;
//! [`unpickle_bytes`] reads a pickled `bytes` (protocol 3 and later) and nothing else.
//!
//! Pickle layout of `bytes` (protocol 5): `PROTO 5`, then — unless the payload is at least
//! 64 KiB, which pickle writes outside any frame — a `FRAME` with the length of the rest,
//! then `SHORT_BINBYTES` (< 256 bytes), `BINBYTES` (< 4 GiB) or `BINBYTES8`, the data,
//! `MEMOIZE`, `STOP`.
use tern_agent_api::core;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::datastore::DataStore;

use crate::error::TransformError;
use crate::literals::{as_scalar, describe, scalar};

/// The blob format flytekit gives pickled values.
pub const PICKLE_FORMAT: &str = "PythonPickle";

const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const BINBYTES8: u8 = 0x8e;
const MEMOIZE: u8 = 0x94;
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const STOP: u8 = b'.';
/// Pickle writes payloads at least this large outside frames.
const FRAME_SIZE_TARGET: usize = 64 * 1024;

/// `cloudpickle.dumps(data)` for a Python `bytes` value.
pub fn pickle_bytes(data: &[u8]) -> Vec<u8> {
    let mut op = Vec::with_capacity(9);
    if data.len() < 256 {
        op.extend_from_slice(&[SHORT_BINBYTES, data.len() as u8]);
    } else if let Ok(len) = u32::try_from(data.len()) {
        op.push(BINBYTES);
        op.extend_from_slice(&len.to_le_bytes());
    } else {
        op.push(BINBYTES8);
        op.extend_from_slice(&(data.len() as u64).to_le_bytes());
    }
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(&[PROTO, 5]);
    if data.len() >= FRAME_SIZE_TARGET {
        out.extend_from_slice(&op);
        out.extend_from_slice(data);
        // The 2 bytes left are below pickle's minimum frame size: no frame header.
        out.extend_from_slice(&[MEMOIZE, STOP]);
    } else {
        let framed = (op.len() + data.len() + 2) as u64;
        out.push(FRAME);
        out.extend_from_slice(&framed.to_le_bytes());
        out.extend_from_slice(&op);
        out.extend_from_slice(data);
        out.extend_from_slice(&[MEMOIZE, STOP]);
    }
    out
}

fn not_bytes(reason: impl Into<String>) -> TransformError {
    TransformError::invalid("pickled bytes", reason.into())
}

/// The `bytes` value of a pickle that holds exactly one `bytes` object.
pub fn unpickle_bytes(pickle: &[u8]) -> Result<Vec<u8>, TransformError> {
    let mut rest = pickle;
    let mut take = |n: usize| -> Result<&[u8], TransformError> {
        if rest.len() < n {
            return Err(not_bytes("the pickle is truncated"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let mut value: Option<Vec<u8>> = None;
    loop {
        let op = take(1)?[0];
        match op {
            PROTO => {
                if take(1)?[0] < 3 {
                    return Err(not_bytes(
                        "pickle protocols below 3 store bytes differently; only 3 and later are read",
                    ));
                }
            }
            FRAME => {
                take(8)?;
            }
            SHORT_BINBYTES | BINBYTES | BINBYTES8 if value.is_none() => {
                let len = match op {
                    SHORT_BINBYTES => usize::from(take(1)?[0]),
                    BINBYTES => u32::from_le_bytes(take(4)?.try_into().unwrap_or_default()) as usize,
                    _ => usize::try_from(u64::from_le_bytes(take(8)?.try_into().unwrap_or_default()))
                        .map_err(|_| not_bytes("a BINBYTES8 length beyond this platform's memory"))?,
                };
                value = Some(take(len)?.to_vec());
            }
            MEMOIZE => {}
            BINPUT => {
                take(1)?;
            }
            LONG_BINPUT => {
                take(4)?;
            }
            STOP => {
                return match (value, rest.is_empty()) {
                    (Some(v), true) => Ok(v),
                    (Some(_), false) => Err(not_bytes(format!("{} bytes after the end of the pickle", rest.len()))),
                    (None, _) => Err(not_bytes("the pickle holds no bytes object")),
                };
            }
            other => {
                return Err(not_bytes(format!("pickle opcode 0x{other:02x}: the pickled value is not a bytes object")))
            }
        }
    }
}

/// The `LiteralType` flytekit writes for a top-level Python `bytes`.
pub fn pickled_bytes_type() -> core::LiteralType {
    let metadata = serde_json::json!({"python_class_name": "<class 'bytes'>"});
    core::LiteralType {
        metadata: metadata.as_object().map(crate::structs::json_to_struct),
        ..crate::types::blob(PICKLE_FORMAT, core::blob_type::BlobDimensionality::Single)
    }
}

/// Writes `data` pickled to `uri` and returns the blob literal flytekit writes for `bytes`.
pub async fn write_pickled_bytes(
    data: &[u8],
    store: &dyn DataStore,
    uri: &str,
) -> Result<core::Literal, TransformError> {
    store.write(uri, pickle_bytes(data).into()).await?;
    Ok(scalar(ScalarValue::Blob(core::Blob {
        metadata: Some(core::BlobMetadata {
            r#type: Some(core::BlobType {
                format: PICKLE_FORMAT.to_owned(),
                dimensionality: core::blob_type::BlobDimensionality::Single as i32,
            }),
        }),
        uri: uri.to_owned(),
    })))
}

/// The `bytes` of a `PythonPickle` blob literal (as flytekit writes a top-level `bytes`).
pub async fn read_pickled_bytes(literal: &core::Literal, store: &dyn DataStore) -> Result<Vec<u8>, TransformError> {
    let blob = match as_scalar(literal) {
        Some(ScalarValue::Blob(b)) => b,
        _ => return Err(TransformError::wrong_kind("a PythonPickle blob (Python bytes)", describe(literal))),
    };
    let format = blob.metadata.as_ref().and_then(|m| m.r#type.as_ref()).map(|t| t.format.as_str()).unwrap_or("");
    if format != PICKLE_FORMAT {
        return Err(TransformError::wrong_kind(
            "a PythonPickle blob (Python bytes)",
            format!("a blob of format {format:?} at {}", blob.uri),
        ));
    }
    let pickle = store.read(&blob.uri).await?;
    unpickle_bytes(&pickle).map_err(|e| e.at_key(&blob.uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn writes_what_cloudpickle_writes() {
        // python: cloudpickle.dumps(b"ab").hex()
        assert_eq!(hex(&pickle_bytes(b"ab")), "800595060000000000000043026162942e");
        assert_eq!(hex(&pickle_bytes(b"")), "80059504000000000000004300942e");
        // cloudpickle.dumps(b"x"*256)[:16], len 274
        let p = pickle_bytes(&[b'x'; 256]);
        assert_eq!((p.len(), hex(&p[..16])), (274, "80059507010000000000004200010000".to_owned()));
        // 65535 bytes: still one frame (len 65553); 65536: unframed (len 65545)
        let p = pickle_bytes(&vec![b'x'; 65_535]);
        assert_eq!((p.len(), hex(&p[..16])), (65_553, "800595060001000000000042ffff0000".to_owned()));
        let p = pickle_bytes(&vec![b'x'; 65_536]);
        assert_eq!((p.len(), hex(&p[..8])), (65_545, "8005420000010078".to_owned()));
        assert_eq!(hex(&p[p.len() - 2..]), "942e");
    }

    #[test]
    fn reads_pickled_bytes_and_only_those() {
        for n in [0, 1, 255, 256, 65_535, 65_536] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            assert_eq!(unpickle_bytes(&pickle_bytes(&data)).unwrap(), data);
        }
        // protocol 3, with BINPUT instead of MEMOIZE: pickle.dumps(b"ab", protocol=3)
        assert_eq!(unpickle_bytes(b"\x80\x03C\x02abq\x00.").unwrap(), b"ab");
        // pickle.dumps(5, protocol=5) is an int
        assert!(unpickle_bytes(b"\x80\x05K\x05.").is_err());
        assert!(unpickle_bytes(b"\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00C\x09ab").is_err());
        assert!(unpickle_bytes(b"").is_err());
    }

    #[tokio::test]
    async fn blob_literals_as_flytekit_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = tern_agent_api::datastore::LocalDataStore::new(dir.path());
        let lit = write_pickled_bytes(b"\x00\x01hi", &store, "raw/abc").await.unwrap();
        assert_eq!(read_pickled_bytes(&lit, &store).await.unwrap(), b"\x00\x01hi");
        // python: TypeEngine.to_literal_type(bytes) serialized deterministically
        let ty = prost::Message::encode_to_vec(&pickled_bytes_type());
        assert_eq!(
            hex(&ty),
            "2a0e0a0c507974686f6e5069636b6c6532280a260a11707974686f6e5f636c6173735f6e616d6512111a0f3c636c61737320276279746573273e"
        );
        let e = read_pickled_bytes(&crate::literals::none(), &store).await.unwrap_err();
        assert_eq!(e.code(), crate::error::codes::WRONG_KIND);
    }
}
