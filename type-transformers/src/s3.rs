//! An S3 data store on `aws-sdk-s3` (feature `s3`, on by default).
//!
//! URIs are `s3://bucket/key`. Credentials come from the AWS default chain (environment, profile,
//! web identity, ECS/IMDS) unless static ones are given (tests, emulators). Any S3-compatible server
//! works through [`S3Config::endpoint_url`] plus [`S3Config::force_path_style`] (moto, MinIO).
//!
//! Errors never carry credentials: they name the URI and the service's error code and message only.
use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use tern_agent_api::datastore::{DataStore, DataStoreError};

/// What an `s3://` URI handles, for [`DataStoreError::UnsupportedUri`].
const HANDLES: &str = "s3://bucket/key URIs";

/// The region used when neither the configuration nor the AWS default chain names one
/// (S3-compatible emulators ignore it; real S3 redirects to the bucket's region).
pub const FALLBACK_REGION: &str = "us-east-1";

/// How to reach S3.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    /// An S3-compatible endpoint (`http://127.0.0.1:5000` for moto). `None`: AWS's own, or what
    /// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` say.
    pub endpoint_url: Option<String>,
    /// `None`: the AWS default chain (`AWS_REGION`, profile, IMDS), else [`FALLBACK_REGION`].
    pub region: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`; needed for emulators on 127.0.0.1.
    pub force_path_style: bool,
    pub credentials: S3Credentials,
}

/// Where S3 credentials come from.
#[derive(Clone, Default)]
pub enum S3Credentials {
    /// The AWS default chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `~/.aws`, web identity, ECS, IMDS.
    #[default]
    DefaultChain,
    /// Fixed keys (tests and emulators).
    Static { access_key_id: String, secret_access_key: String, session_token: Option<String> },
}

impl std::fmt::Debug for S3Credentials {
    // Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DefaultChain => f.write_str("DefaultChain"),
            Self::Static { access_key_id, session_token, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field("session_token", &session_token.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

impl S3Config {
    /// The configuration from the environment: the AWS default chain, plus `TERN_S3_ENDPOINT_URL`
    /// and `TERN_S3_FORCE_PATH_STYLE=true` for S3-compatible servers.
    pub fn from_env() -> Self {
        let force = std::env::var("TERN_S3_FORCE_PATH_STYLE").unwrap_or_default();
        Self {
            endpoint_url: std::env::var("TERN_S3_ENDPOINT_URL").ok().filter(|s| !s.is_empty()),
            region: None,
            force_path_style: matches!(force.to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
            credentials: S3Credentials::DefaultChain,
        }
    }

    /// A local S3-compatible emulator (moto, MinIO) at `endpoint`: path-style, fixed dummy keys.
    pub fn emulator(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint_url: Some(endpoint.into()),
            region: Some(FALLBACK_REGION.to_owned()),
            force_path_style: true,
            credentials: S3Credentials::Static {
                access_key_id: "test".to_owned(),
                secret_access_key: "test".to_owned(),
                session_token: None,
            },
        }
    }
}

/// Objects in S3 buckets.
#[derive(Clone, Debug)]
pub struct S3DataStore {
    client: Client,
}

impl S3DataStore {
    /// Builds a client from `config`. Nothing is contacted until the first request, so this does
    /// not fail: a wrong endpoint or missing credentials show up as errors of the first call.
    pub async fn connect(config: &S3Config) -> Self {
        // rustls on ring (already in the tree for reqwest): no C toolchain needed for aws-lc.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let S3Credentials::Static { access_key_id, secret_access_key, session_token } = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                access_key_id.clone(),
                secret_access_key.clone(),
                session_token.clone(),
                None,
                "tern-static",
            ));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.force_path_style);
        if shared.region().is_none() {
            builder = builder.region(Region::new(FALLBACK_REGION));
        }
        Self { client: Client::from_conf(builder.build()) }
    }

    /// Wraps a client configured elsewhere.
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates `bucket` (tests and emulators; an existing bucket of ours is fine).
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), DataStoreError> {
        let uri = format!("s3://{bucket}");
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(()),
            Err(e) => Err(sdk_error(&uri, e)),
        }
    }
}

/// `s3://bucket/key` → (`bucket`, `key`); the key may be empty (the whole bucket).
pub fn parse_s3_uri(uri: &str) -> Result<(&str, &str), DataStoreError> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: HANDLES })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(DataStoreError::UnsupportedUri { uri: uri.to_owned(), handles: HANDLES });
    }
    Ok((bucket, key))
}

/// An SDK failure as a data store error: 404s are `NotFound`, the rest `Io` with the service's code
/// and message (never the request's credentials or signature).
fn sdk_error<E>(uri: &str, err: SdkError<E, HttpResponse>) -> DataStoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    if status == Some(404) || matches!(code.as_deref(), Some("NoSuchKey" | "NotFound" | "NoSuchBucket")) {
        return DataStoreError::NotFound { uri: uri.to_owned() };
    }
    let kind = match (status, code.as_deref()) {
        (Some(401 | 403), _) | (_, Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")) => {
            std::io::ErrorKind::PermissionDenied
        }
        _ if matches!(err, SdkError::TimeoutError(_)) => std::io::ErrorKind::TimedOut,
        _ => std::io::ErrorKind::Other,
    };
    let msg = match (&code, err.message()) {
        (Some(code), Some(message)) => format!("S3 {code}: {message}"),
        (Some(code), None) => format!("S3 {code}{}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()),
        _ => format!("S3 request failed: {}", DisplayErrorContext(&err)),
    };
    DataStoreError::Io { uri: uri.to_owned(), source: std::io::Error::new(kind, msg) }
}

#[async_trait]
impl DataStore for S3DataStore {
    async fn read(&self, uri: &str) -> Result<Bytes, DataStoreError> {
        let (bucket, key) = parse_s3_uri(uri)?;
        let out = self.client.get_object().bucket(bucket).key(key).send().await.map_err(|e| sdk_error(uri, e))?;
        let data = out.body.collect().await.map_err(|e| DataStoreError::Io {
            uri: uri.to_owned(),
            source: std::io::Error::other(format!("reading the S3 object body: {e}")),
        })?;
        Ok(data.into_bytes())
    }

    async fn write(&self, uri: &str, data: Bytes) -> Result<(), DataStoreError> {
        let (bucket, key) = parse_s3_uri(uri)?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| sdk_error(uri, e))?;
        Ok(())
    }

    async fn exists(&self, uri: &str) -> Result<bool, DataStoreError> {
        let (bucket, key) = parse_s3_uri(uri)?;
        match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) => match sdk_error(uri, e) {
                DataStoreError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, DataStoreError> {
        let (bucket, key) = parse_s3_uri(prefix)?;
        // A prefix is a directory: `a/b` lists `a/b/...`, never `a/bc`.
        let dir = if key.is_empty() || key.ends_with('/') { key.to_owned() } else { format!("{key}/") };
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(&dir).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(prefix, e))?;
            for object in page.contents() {
                let Some(k) = object.key() else { continue };
                // Zero-byte "folder" markers (`a/b/`) some tools create are not objects.
                if k.ends_with('/') {
                    continue;
                }
                out.push(tern_agent_api::datastore::join_uri(prefix, &k[dir.len()..]));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn upload_file(&self, local: &Path, uri: &str) -> Result<(), DataStoreError> {
        let (bucket, key) = parse_s3_uri(uri)?;
        // Streams the file from disk instead of reading it into memory.
        let body = ByteStream::from_path(local).await.map_err(|e| DataStoreError::Io {
            uri: local.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.client.put_object().bucket(bucket).key(key).body(body).send().await.map_err(|e| sdk_error(uri, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_uris() {
        assert_eq!(parse_s3_uri("s3://b/k/x.csv").unwrap(), ("b", "k/x.csv"));
        assert_eq!(parse_s3_uri("s3://b").unwrap(), ("b", ""));
        assert!(parse_s3_uri("s3:///k").is_err());
        assert!(parse_s3_uri("gs://b/k").unwrap_err().to_string().contains("gs://b/k"));
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let c = S3Config {
            credentials: S3Credentials::Static {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/SECRET".into(),
                session_token: Some("TOKEN-SECRET".into()),
            },
            ..Default::default()
        };
        let text = format!("{c:?}");
        assert!(text.contains("AKIDEXAMPLE") && !text.contains("SECRET"), "{text}");
    }
}
