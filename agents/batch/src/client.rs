//! The AWS side: Batch (job definitions, submit, find, describe, terminate) and CloudWatch
//! Logs, on the AWS SDK for Rust with the SDK's own conventions for region, endpoint,
//! profile and credentials.
//!
//! Clients are built on first use (building the gateway never contacts AWS) and again when
//! the configured credentials' secrets change (a rotated key starts new clients). Errors
//! name the operation and AWS's error code and message, never a credential.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_batch::config::{Credentials, Region};
use aws_sdk_batch::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_batch::types as bt;
use sha2::{Digest, Sha256};
use tern_agent_api::prelude::*;
use tokio::sync::Mutex;

use crate::codes;
use crate::config::BatchConfig;

/// The region when neither the section nor the SDK's chain names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// The HTTPS client of every AWS call: rustls on ring, as the S3 data store (one HTTP/TLS
/// stack in the gateway, no C toolchain for aws-lc).
pub fn https() -> aws_sdk_batch::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Clients for one set of credentials.
#[derive(Clone, Debug)]
pub struct Clients {
    pub batch: aws_sdk_batch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub region: String,
}

#[derive(Debug)]
pub struct Aws {
    config: Arc<BatchConfig>,
    /// (fingerprint of the resolved credentials, clients)
    clients: Mutex<Option<(String, Clients)>>,
}

/// What a job definition is registered (and cached) for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DefinitionKey {
    pub image: String,
    pub role: Option<String>,
    pub platform: String,
}

impl DefinitionKey {
    /// `<prefix>-<16 hex of sha256(image, role, platform, execution role)>`: the same name in every
    /// gateway, so replicas and restarts reuse one definition.
    pub fn name(&self, config: &BatchConfig) -> String {
        let mut h = Sha256::new();
        for part in [self.image.as_str(), self.role.as_deref().unwrap_or(""), self.platform.as_str(), config.execution_role_arn.as_deref().unwrap_or("")] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        format!("{}-{}", config.job_definition_prefix, hex::encode(&h.finalize()[..8]))
    }
}

/// The error and its sources, as text (no debug dump of requests or responses).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ").chars().take(1000).collect()
}

/// An AWS SDK failure as an agent error: `what` names the operation.
pub fn sdk_error<E>(what: &str, err: SdkError<E, aws_sdk_batch::config::http::HttpResponse>) -> AgentError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = err.message().map(|m| m.chars().take(500).collect::<String>());
    let detail = match (&code, &message) {
        (Some(c), Some(m)) => format!("{what}: AWS {c}: {m}"),
        (Some(c), None) => format!("{what}: AWS {c}"),
        _ => format!("{what}: {}", chain(&err)),
    };
    if !matches!(err, SdkError::ServiceError(_)) {
        // No answer, or none to read. Credentials that cannot be loaded are a configuration
        // problem: retrying the same chain does not produce them.
        if detail.contains("loading credentials") || detail.contains("no credentials") || detail.contains("credentials provider") {
            return codes::denied(format!("{detail} (no usable AWS credentials: see [agents.batch] or the SDK's default chain)"));
        }
        return match err {
            SdkError::ConstructionFailure(_) => codes::rejected(detail),
            _ => codes::unavailable(detail, None),
        };
    }
    match code.as_deref().unwrap_or("") {
        "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException" | "InvalidSignatureException"
        | "SignatureDoesNotMatch" | "ExpiredTokenException" | "InvalidClientTokenId" | "MissingAuthenticationToken"
        | "NotAuthorized" | "UnauthorizedOperation" => codes::denied(detail),
        "TooManyRequestsException" | "ThrottlingException" | "Throttling" | "RequestLimitExceeded" => {
            codes::unavailable(format!("{detail} (throttled)"), Some(Duration::from_secs(2)))
        }
        "ServerException" | "ServiceUnavailableException" | "InternalFailure" | "ServiceUnavailable" => codes::unavailable(detail, None),
        _ => match err.raw_response().map(|r| r.status().as_u16()) {
            Some(401 | 403) => codes::denied(detail),
            Some(429) => codes::unavailable(format!("{detail} (throttled)"), Some(Duration::from_secs(2))),
            Some(s) if s >= 500 => codes::unavailable(detail, None),
            _ => codes::rejected(detail),
        },
    }
}

impl Aws {
    pub fn new(config: Arc<BatchConfig>) -> Self {
        Self { config, clients: Mutex::new(None) }
    }

    /// The clients for the credentials the section names now.
    pub async fn clients(&self, ctx: &TaskContext) -> Result<Clients, AgentError> {
        let c = &self.config;
        let keys = match (&c.access_key_id, &c.secret_access_key) {
            (Some(id), Some(secret)) => {
                let id = ctx.secrets().resolve(id)?;
                let secret = ctx.secrets().resolve(secret)?;
                let token = c.session_token.as_ref().map(|t| ctx.secrets().resolve(t)).transpose()?;
                Some((id, secret, token))
            }
            _ => None,
        };
        let fingerprint = match &keys {
            None => String::new(),
            Some((id, secret, token)) => {
                let mut h = Sha256::new();
                for part in [id.expose(), secret.expose(), token.as_ref().map_or("", |t| t.expose())] {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part.as_bytes());
                }
                hex::encode(h.finalize())
            }
        };
        let mut cached = self.clients.lock().await;
        if let Some((fp, clients)) = cached.as_ref() {
            if *fp == fingerprint {
                return Ok(clients.clone());
            }
        }
        let shared = self.load(keys).await;
        let region = shared.region().map(|r| r.to_string()).unwrap_or_else(|| FALLBACK_REGION.to_owned());
        let mut batch = aws_sdk_batch::config::Builder::from(&shared);
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(&shared);
        if shared.region().is_none() {
            batch = batch.region(Region::new(FALLBACK_REGION));
            logs = logs.region(Region::new(FALLBACK_REGION));
        }
        if let Some(e) = &c.endpoint_url {
            batch = batch.endpoint_url(e.trim());
        }
        if let Some(e) = c.logs_endpoint_url.as_ref().or(c.endpoint_url.as_ref()) {
            logs = logs.endpoint_url(e.trim());
        }
        let clients = Clients {
            batch: aws_sdk_batch::Client::from_conf(batch.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
            region,
        };
        *cached = Some((fingerprint, clients.clone()));
        Ok(clients)
    }

    async fn load(&self, keys: Option<(Secret, Secret, Option<Secret>)>) -> SdkConfig {
        let c = &self.config;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https())
            .timeout_config(TimeoutConfig::builder().operation_timeout(c.request_timeout).build())
            .retry_config(RetryConfig::standard().with_max_attempts(c.max_attempts));
        if let Some(p) = &c.profile {
            loader = loader.profile_name(p.trim());
        }
        if let Some(r) = &c.region {
            loader = loader.region(Region::new(r.trim().to_owned()));
        }
        if let Some((id, secret, token)) = keys {
            loader = loader.credentials_provider(Credentials::new(
                id.expose(),
                secret.expose(),
                token.map(|t| t.expose().to_owned()),
                None,
                "tern-agents-batch",
            ));
        }
        loader.load().await
    }
}

/// A job as Batch describes it (the fields the agent uses).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub job_name: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub container_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub log_stream: Option<String>,
    pub array_size: Option<i32>,
    pub status_summary: Vec<(String, i32)>,
    pub created_at: Option<i64>,
    pub attempts: usize,
}

impl JobView {
    fn from_detail(j: &bt::JobDetail) -> Self {
        let container = j.container();
        let log_stream = container
            .and_then(|c| c.log_stream_name())
            .or_else(|| j.attempts().last().and_then(|a| a.container()).and_then(|c| c.log_stream_name()))
            .map(str::to_owned);
        let mut summary: Vec<(String, i32)> = j
            .array_properties()
            .and_then(|a| a.status_summary())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        summary.sort();
        Self {
            job_id: j.job_id().unwrap_or_default().to_owned(),
            job_name: j.job_name().unwrap_or_default().to_owned(),
            status: j.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            status_reason: j.status_reason().map(str::to_owned),
            container_reason: container.and_then(|c| c.reason()).map(str::to_owned),
            exit_code: container.and_then(|c| c.exit_code()),
            log_stream,
            array_size: j.array_properties().and_then(|a| a.size()),
            status_summary: summary,
            created_at: j.created_at(),
            attempts: j.attempts().len(),
        }
    }
}

/// A child of an array job.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub index: Option<i32>,
    pub job_id: String,
    pub status: String,
    pub status_reason: Option<String>,
}

/// Job definitions registered by this gateway: key → ARN.
#[derive(Debug, Default)]
pub struct DefinitionCache(Mutex<HashMap<DefinitionKey, String>>);

impl DefinitionCache {
    /// The ARN of the active job definition for `key`, registering it when none exists.
    pub async fn arn(&self, clients: &Clients, config: &BatchConfig, key: &DefinitionKey) -> Result<String, AgentError> {
        let mut cache = self.0.lock().await;
        if let Some(arn) = cache.get(key) {
            return Ok(arn.clone());
        }
        let name = key.name(config);
        let found = clients
            .batch
            .describe_job_definitions()
            .job_definition_name(&name)
            .status("ACTIVE")
            .send()
            .await
            .map_err(|e| sdk_error("DescribeJobDefinitions", e))?;
        let existing = found
            .job_definitions()
            .iter()
            .filter(|d| d.status().is_none_or(|s| s == "ACTIVE"))
            .filter_map(|d| d.job_definition_arn().map(|arn| (d.revision().unwrap_or(0), arn.to_owned())))
            .max()
            .map(|(_, arn)| arn);
        let arn = match existing {
            Some(arn) => arn,
            None => register(clients, config, key, &name).await?,
        };
        cache.insert(key.clone(), arn.clone());
        Ok(arn)
    }

    /// Forgets a definition Batch no longer knows (deregistered behind our back).
    pub async fn forget(&self, key: &DefinitionKey) {
        self.0.lock().await.remove(key);
    }
}

/// A `resourceRequirements` entry.
pub fn requirement(kind: bt::ResourceType, value: String) -> bt::ResourceRequirement {
    bt::ResourceRequirement::builder().r#type(kind).value(value).build()
}

async fn register(clients: &Clients, config: &BatchConfig, key: &DefinitionKey, name: &str) -> Result<String, AgentError> {
    let fargate = key.platform == "FARGATE";
    let mut props = bt::ContainerProperties::builder()
        .image(&key.image)
        .resource_requirements(requirement(bt::ResourceType::Vcpu, config.default_vcpus.clone()))
        .resource_requirements(requirement(bt::ResourceType::Memory, config.default_memory_mib.to_string()))
        .command("true");
    if let Some(role) = &key.role {
        props = props.job_role_arn(role);
    }
    if let Some(role) = &config.execution_role_arn {
        props = props.execution_role_arn(role);
    }
    if fargate {
        props = props.network_configuration(bt::NetworkConfiguration::builder().assign_public_ip(bt::AssignPublicIp::Enabled).build());
    }
    let out = clients
        .batch
        .register_job_definition()
        .job_definition_name(name)
        .r#type(bt::JobDefinitionType::Container)
        .platform_capabilities(if fargate { bt::PlatformCapability::Fargate } else { bt::PlatformCapability::Ec2 })
        .container_properties(props.build())
        .tags("tern:managed-by", "tern-agent-batch")
        .send()
        .await
        .map_err(|e| sdk_error("RegisterJobDefinition", e))?;
    tracing::info!(job_definition = name, image = %key.image, platform = %key.platform, "AWS Batch job definition registered");
    out.job_definition_arn()
        .map(str::to_owned)
        .ok_or_else(|| codes::unavailable("RegisterJobDefinition answered without a jobDefinitionArn", None))
}

/// Jobs in `queue` named exactly `name` (`ListJobs` with a `JOB_NAME` filter returns jobs of
/// every status), oldest first.
pub async fn find_jobs(clients: &Clients, queue: &str, name: &str) -> Result<Vec<(String, Option<i64>)>, AgentError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let out = clients
            .batch
            .list_jobs()
            .job_queue(queue)
            .filters(bt::KeyValuesPair::builder().name("JOB_NAME").values(name).build())
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| sdk_error("ListJobs", e))?;
        for j in out.job_summary_list() {
            // The filter also matches by prefix with a trailing `*`; ours has none, but check.
            if let (Some(id), Some(n)) = (j.job_id(), j.job_name()) {
                if n == name && !id.is_empty() {
                    found.push((id.to_owned(), j.created_at()));
                }
            }
        }
        token = out.next_token().map(str::to_owned).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    found.sort_by_key(|(id, at)| (at.unwrap_or(i64::MAX), id.clone()));
    Ok(found)
}

pub async fn describe(clients: &Clients, job_id: &str) -> Result<Option<JobView>, AgentError> {
    let out = clients.batch.describe_jobs().jobs(job_id).send().await.map_err(|e| sdk_error("DescribeJobs", e))?;
    Ok(out.jobs().iter().find(|j| j.job_id() == Some(job_id)).map(JobView::from_detail))
}

/// The children of array job `job_id` (at most `max`), by index.
pub async fn children(clients: &Clients, job_id: &str, max: usize) -> Result<Vec<Child>, AgentError> {
    let mut out_children = Vec::new();
    let mut token: Option<String> = None;
    while out_children.len() < max {
        let out = clients
            .batch
            .list_jobs()
            .array_job_id(job_id)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| sdk_error("ListJobs(arrayJobId)", e))?;
        for j in out.job_summary_list() {
            let Some(job_id) = j.job_id() else { continue };
            out_children.push(Child {
                // The index, else the `:N` suffix of the child's id.
                index: j
                    .array_properties()
                    .and_then(|a| a.index())
                    .or_else(|| job_id.rsplit_once(':').and_then(|(_, n)| n.parse().ok())),
                job_id: job_id.to_owned(),
                status: j.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                status_reason: j.status_reason().map(str::to_owned),
            });
        }
        token = out.next_token().map(str::to_owned).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    out_children.truncate(max);
    out_children.sort_by_key(|c| (c.index.unwrap_or(i32::MAX), c.job_id.clone()));
    Ok(out_children)
}

pub async fn terminate(clients: &Clients, job_id: &str, reason: &str) -> Result<(), AgentError> {
    clients.batch.terminate_job().job_id(job_id).reason(reason).send().await.map_err(|e| sdk_error("TerminateJob", e))?;
    Ok(())
}

/// One page of a log stream: (lines, the token of the next page).
pub async fn log_events(
    clients: &Clients,
    group: &str,
    stream: &str,
    token: Option<&str>,
    limit: Option<i32>,
) -> Result<(Vec<(Option<i64>, String)>, Option<String>), AgentError> {
    let out = clients
        .logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(true)
        .set_next_token(token.map(str::to_owned))
        .set_limit(limit)
        .send()
        .await
        .map_err(|e| sdk_error("GetLogEvents", e))?;
    let lines = out.events().iter().map(|e| (e.timestamp(), e.message().unwrap_or_default().to_owned())).collect();
    Ok((lines, out.next_forward_token().map(str::to_owned)))
}
