//! `[agents.batch]`: where AWS Batch is (region, endpoint, profile, credentials), which
//! queues and roles jobs may use, and the job definitions' defaults.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// Settings of the AWS Batch agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Task types served (version 0): flytekitplugins-awsbatch writes `aws-batch`.
    pub task_types: Vec<String>,
    /// AWS region (`AWS_REGION`, `AWS_DEFAULT_REGION`); else the SDK's chain (profile, IMDS),
    /// else `us-east-1`.
    pub region: Option<String>,
    /// A Batch endpoint other than AWS's (`AWS_ENDPOINT_URL_BATCH`, `AWS_ENDPOINT_URL`): a
    /// VPC endpoint, or moto's server (`http://127.0.0.1:5000`).
    pub endpoint_url: Option<String>,
    /// The CloudWatch Logs endpoint for `GetTaskLogs` (`AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`); default
    /// `endpoint_url`, else AWS's.
    pub logs_endpoint_url: Option<String>,
    /// A named profile of `~/.aws/config` and `~/.aws/credentials` (`AWS_PROFILE`).
    pub profile: Option<String>,
    /// Static credentials, as secret references (`env:NAME`, `file:PATH`). Unset: the AWS
    /// SDK's default chain (environment, profile, web identity, ECS, IMDS).
    pub access_key_id: Option<SecretRef>,
    pub secret_access_key: Option<SecretRef>,
    pub session_token: Option<SecretRef>,
    /// The job queue jobs go to (name or ARN).
    pub job_queue: Option<String>,
    /// Other queues a template may choose with its `dynamic_queue` config key (the key
    /// propeller's AWS Batch plugin reads); a queue not listed here is refused.
    pub queues: Vec<String>,
    /// The IAM role of the jobs' containers (`jobRoleArn` of the job definitions).
    pub job_role_arn: Option<String>,
    /// Roles a template may ask for in `security_context.run_as.iam_role` besides
    /// `job_role_arn`; any other is refused (`TERN-V003`).
    pub allowed_job_roles: Vec<String>,
    /// The execution role (`executionRoleArn`), required by Fargate job definitions.
    pub execution_role_arn: Option<String>,
    /// Prefix of the job definitions this agent registers (`<prefix>-<hash>`).
    pub job_definition_prefix: String,
    /// vCPUs of a job whose container requests none (Batch's `VCPU` requirement).
    pub default_vcpus: String,
    /// Memory of a job whose container requests none, in MiB.
    pub default_memory_mib: u64,
    /// The job attempt timeout when the task sets none (`attemptDurationSeconds`; Batch's
    /// minimum is 60 s). Unset: no timeout.
    #[serde(default, with = "humantime_serde")]
    pub default_timeout: Option<Duration>,
    /// The CloudWatch Logs group of the jobs (Batch's default `/aws/batch/job`).
    pub log_group: String,
    /// Deadline of each call to AWS.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Attempts of each AWS call, the first included, in the SDK's standard retry mode
    /// (exponential backoff with jitter on throttling, 5xx and connection failures); 1 turns
    /// retries off. 1 to 10.
    pub max_attempts: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            task_types: vec!["aws-batch".into()],
            region: None,
            endpoint_url: None,
            logs_endpoint_url: None,
            profile: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            job_queue: None,
            queues: Vec::new(),
            job_role_arn: None,
            allowed_job_roles: Vec::new(),
            execution_role_arn: None,
            job_definition_prefix: "tern".into(),
            default_vcpus: "1".into(),
            default_memory_mib: 2048,
            default_timeout: None,
            log_group: "/aws/batch/job".into(),
            request_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }
}

fn check_url(key: &str, url: &Option<String>) -> Result<(), String> {
    if let Some(u) = url {
        let u = u.trim();
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() <= "https://".len() {
            return Err(format!("{key} {u:?} is not an http(s) URL"));
        }
    }
    Ok(())
}

impl BatchConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.task_types.is_empty() || self.task_types.iter().any(|t| t.trim().is_empty()) {
            return Err("task_types must list task types (e.g. [\"aws-batch\"]), none empty".into());
        }
        check_url("endpoint_url", &self.endpoint_url)?;
        check_url("logs_endpoint_url", &self.logs_endpoint_url)?;
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err("access_key_id and secret_access_key go together".into());
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            return Err("session_token needs access_key_id and secret_access_key".into());
        }
        if self.job_queue.as_deref().is_some_and(|q| q.trim().is_empty()) || self.queues.iter().any(|q| q.trim().is_empty()) {
            return Err("job_queue and queues must not be empty names".into());
        }
        let prefix = &self.job_definition_prefix;
        if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("job_definition_prefix must be 1-64 letters, digits, '-' or '_'".into());
        }
        crate::template::vcpus(&self.default_vcpus).map_err(|e| format!("default_vcpus: {e}"))?;
        if !(1..=10).contains(&self.max_attempts) {
            return Err(format!("max_attempts = {} is not between 1 and 10", self.max_attempts));
        }
        if self.default_memory_mib == 0 {
            return Err("default_memory_mib must be positive".into());
        }
        if self.default_timeout.is_some_and(|t| t < Duration::from_secs(60)) {
            return Err("default_timeout must be at least 60s (AWS Batch's minimum)".into());
        }
        if self.log_group.trim().is_empty() {
            return Err("log_group must not be empty".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        Ok(())
    }

    /// The queue for a template asking for `requested` (its `dynamic_queue`), if any.
    pub fn queue_for(&self, requested: Option<&str>) -> Result<String, AgentError> {
        match requested.map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) if self.job_queue.as_deref() == Some(q) || self.queues.iter().any(|x| x == q) => Ok(q.to_owned()),
            Some(q) => Err(crate::codes::no_queue(format!(
                "the template asks for job queue {:?}, which [agents.batch] does not allow (job_queue or queues)",
                q.chars().take(200).collect::<String>()
            ))),
            None => self.job_queue.clone().ok_or_else(|| {
                crate::codes::no_queue("no job queue: set job_queue in [agents.batch] (or give the template a dynamic_queue listed in queues)")
            }),
        }
    }

    /// The role for a template asking for `requested` (its `run_as.iam_role`), if any.
    pub fn role_for(&self, requested: Option<&str>) -> Result<Option<String>, AgentError> {
        match requested.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) if self.job_role_arn.as_deref() == Some(r) || self.allowed_job_roles.iter().any(|x| x == r) => {
                Ok(Some(r.to_owned()))
            }
            Some(r) => Err(crate::codes::role_not_allowed(format!(
                "the template asks for IAM role {:?}, which [agents.batch] does not allow (job_role_arn or allowed_job_roles)",
                r.chars().take(200).collect::<String>()
            ))),
            None => Ok(self.job_role_arn.clone()),
        }
    }
}

/// The factory behind `[agents.batch]`.
pub struct BatchFactory;

impl AgentFactory for BatchFactory {
    type Config = BatchConfig;
    const NAME: &'static str = "batch";
    const DESCRIPTION: &'static str = "flytekit AWS Batch tasks (aws-batch) on AWS Batch, idempotent by job name";

    fn standard_env() -> &'static [StandardEnv] {
        // The AWS SDK's own variables (first one set wins).
        const ENV: &[StandardEnv] = &[
            StandardEnv::value("AWS_REGION", "region"),
            StandardEnv::value("AWS_DEFAULT_REGION", "region"),
            StandardEnv::value("AWS_ENDPOINT_URL_BATCH", "endpoint_url"),
            StandardEnv::value("AWS_ENDPOINT_URL", "endpoint_url"),
            StandardEnv::value("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "logs_endpoint_url"),
            StandardEnv::value("AWS_PROFILE", "profile"),
        ];
        ENV
    }

    fn build(config: BatchConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config.check().map_err(|m| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.batch] {m}")))?;
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::BatchAgent::new(config, &init.services))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_serve_aws_batch() {
        let c = BatchConfig::default();
        assert_eq!(c.task_types, ["aws-batch"]);
        assert!(c.check().is_ok());
        assert_eq!(c.queue_for(None).unwrap_err().code, crate::codes::NO_QUEUE);
    }

    #[test]
    fn parses_a_section_and_refuses_unknown_keys_and_secret_values() {
        let c: BatchConfig = toml::from_str(
            r#"
            region = "eu-west-1"
            endpoint_url = "http://127.0.0.1:5000"
            access_key_id = "env:AWS_ACCESS_KEY_ID"
            secret_access_key = "file:/run/secrets/aws"
            job_queue = "q1"
            queues = ["gpu"]
            job_role_arn = "arn:aws:iam::123456789012:role/job"
            default_timeout = "2h"
            request_timeout = "5s"
            "#,
        )
        .unwrap();
        assert!(c.check().is_ok());
        assert_eq!(c.default_timeout, Some(Duration::from_secs(7200)));
        assert_eq!(c.queue_for(Some("gpu")).unwrap(), "gpu");
        assert_eq!(c.queue_for(None).unwrap(), "q1");
        assert_eq!(c.queue_for(Some("other")).unwrap_err().code, crate::codes::NO_QUEUE);
        assert_eq!(c.role_for(None).unwrap().as_deref(), Some("arn:aws:iam::123456789012:role/job"));
        assert_eq!(c.role_for(Some("arn:aws:iam::1:role/x")).unwrap_err().code, crate::codes::ROLE_NOT_ALLOWED);
        assert!(toml::from_str::<BatchConfig>("queue = \"q\"").is_err());
        assert!(toml::from_str::<BatchConfig>("secret_access_key = \"AKIA-not-a-reference\"").is_err(), "a value is not a reference");
    }

    #[test]
    fn refuses_inconsistent_settings() {
        let key: SecretRef = "env:K".parse().unwrap();
        let bad = [
            BatchConfig { task_types: vec![], ..Default::default() },
            BatchConfig { endpoint_url: Some("127.0.0.1:5000".into()), ..Default::default() },
            BatchConfig { access_key_id: Some(key.clone()), ..Default::default() },
            BatchConfig { session_token: Some(key), ..Default::default() },
            BatchConfig { job_queue: Some(" ".into()), ..Default::default() },
            BatchConfig { job_definition_prefix: "has space".into(), ..Default::default() },
            BatchConfig { default_vcpus: "lots".into(), ..Default::default() },
            BatchConfig { default_timeout: Some(Duration::from_secs(5)), ..Default::default() },
            BatchConfig { request_timeout: Duration::ZERO, ..Default::default() },
            BatchConfig { max_attempts: 0, ..Default::default() },
            BatchConfig { max_attempts: 11, ..Default::default() },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }
}
