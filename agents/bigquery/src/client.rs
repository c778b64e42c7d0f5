//! The BigQuery REST v2 calls the agent makes (gcp-bigquery-client 0.28): jobs.insert, jobs.get,
//! jobs.cancel, jobs.getQueryResults; the client built from `[agents.bigquery]` (endpoint, auth);
//! and every error turned into a classified [`AgentError`].
use std::sync::Arc;

use async_trait::async_trait;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::get_query_results_response::GetQueryResultsResponse;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::Client;
use sha2::{Digest, Sha256};
use tern_agent_api::prelude::{AgentError, SecretRef, TaskContext};
use tokio::sync::Mutex;

use crate::codes;
use crate::config::{AuthMode, BigQueryConfig};

/// Anonymous requests (emulators): BigQuery's client always sends a bearer token, so this one is a
/// fixed word an emulator ignores.
#[derive(Clone)]
struct Anonymous;

#[async_trait]
impl Authenticator for Anonymous {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("anonymous".to_owned())
    }
}

/// Builds the BigQuery client on first use and again when the credentials' content changes (a
/// rotated key file is picked up without a restart). The key is read through the agent's secret
/// provider each time a client is needed, never stored in config, handles or messages.
pub struct Connector {
    base_url: String,
    auth: AuthMode,
    credentials: Option<SecretRef>,
    http: reqwest::Client,
    current: Mutex<Option<(String, Arc<BigQuery>)>>,
}

impl Connector {
    pub fn new(config: &BigQueryConfig) -> Result<Self, AgentError> {
        // Redirects are not followed: a 3xx is BigQuery's answer, and following it could send the
        // bearer token elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| codes::transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base_url: config.base_url(),
            auth: config.auth,
            credentials: config.credentials.clone(),
            http,
            current: Mutex::new(None),
        })
    }

    /// The client for this call.
    pub async fn client(&self, ctx: &TaskContext) -> Result<Arc<BigQuery>, AgentError> {
        let (fingerprint, key) = match self.auth {
            AuthMode::Anonymous => ("anonymous".to_owned(), None),
            AuthMode::ServiceAccount => {
                let Some(reference) = &self.credentials else {
                    return Err(codes::credentials(
                        "no BigQuery credentials: set [agents.bigquery] credentials (a secret reference to a service-account \
                         JSON key, e.g. \"file:/var/secrets/google/key.json\"), or GOOGLE_APPLICATION_CREDENTIALS; \
                         for an emulator set auth = \"anonymous\"",
                    ));
                };
                let secret = ctx.secrets().resolve(reference)?;
                let digest = hex::encode(Sha256::digest(secret.expose().as_bytes()));
                (digest, Some((reference.clone(), secret)))
            }
        };
        let mut current = self.current.lock().await;
        if let Some((have, client)) = current.as_ref() {
            if *have == fingerprint {
                return Ok(client.clone());
            }
        }
        let mut builder = ClientBuilder::new();
        builder.with_v2_base_url(self.base_url.clone()).with_client(self.http.clone());
        let client = match key {
            None => builder.build_from_authenticator(Arc::new(Anonymous)).await,
            Some((reference, secret)) => {
                let key = gcp_bigquery_client::yup_oauth2::parse_service_account_key(secret.expose()).map_err(|_| {
                    codes::credentials(format!(
                        "the BigQuery credentials {reference} are not a service-account JSON key \
                         (type, client_email, private_key, token_uri)"
                    ))
                })?;
                builder.build_from_service_account_key(key, false).await
            }
        }
        .map_err(classify)?;
        let client = Arc::new(BigQuery { inner: client });
        *current = Some((fingerprint, client.clone()));
        Ok(client)
    }
}

/// One BigQuery client.
pub struct BigQuery {
    inner: Client,
}

/// What jobs.insert did.
#[derive(Debug)]
pub enum Inserted {
    /// A new job.
    Created(Job),
    /// The job id existed already (HTTP 409): this is that job, found with jobs.get.
    Attached(Job),
}

impl BigQuery {
    /// jobs.insert with the job's own id; "already exists" attaches to that job (jobs.get) and
    /// never submits another.
    pub async fn insert_or_attach(&self, project: &str, job: Job) -> Result<Inserted, AgentError> {
        let reference = job.job_reference.clone().unwrap_or_default();
        let job_id = reference.job_id.clone().unwrap_or_default();
        match self.inner.job().insert(project, job).await {
            Ok(job) => Ok(Inserted::Created(job)),
            Err(e) if http_status(&e) == Some(409) => {
                // BigQuery names the job's location in the conflict ("Already Exists: Job P:LOCATION.ID"),
                // which matters when the template gave none and BigQuery chose one.
                let location = reference.location.clone().or_else(|| conflict_location(&e, project, &job_id));
                match self.get(project, &job_id, location.as_deref()).await? {
                    Some(job) => Ok(Inserted::Attached(job)),
                    None => Err(codes::from_reason(
                        "backendError",
                        0,
                        format!("BigQuery answered that job {job_id} already exists, but jobs.get does not find it"),
                    )),
                }
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// jobs.get; `None` when BigQuery does not know the job (HTTP 404).
    pub async fn get(&self, project: &str, job_id: &str, location: Option<&str>) -> Result<Option<Job>, AgentError> {
        match self.inner.job().get_job(project, job_id, location).await {
            Ok(job) => Ok(Some(job)),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// jobs.cancel; a job BigQuery does not know is already gone (OK). Cancelling a finished job
    /// is accepted by BigQuery and changes nothing.
    pub async fn cancel(&self, project: &str, job_id: &str, location: Option<&str>) -> Result<(), AgentError> {
        match self.inner.job().cancel_job(project, job_id, location).await {
            Ok(_) => Ok(()),
            Err(e) if http_status(&e) == Some(404) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    /// One page of jobs.getQueryResults.
    pub async fn results_page(
        &self,
        project: &str,
        job_id: &str,
        location: Option<&str>,
        page_token: Option<String>,
        max_results: u32,
    ) -> Result<GetQueryResultsResponse, AgentError> {
        let params = GetQueryResultsParameters {
            format_options: None,
            location: location.map(str::to_owned),
            max_results: Some(max_results.min(i32::MAX as u32) as i32),
            page_token,
            start_index: None,
            timeout_ms: None,
        };
        self.inner.job().get_query_results(project, job_id, params).await.map_err(classify)
    }
}

/// The location in a 409 "Already Exists: Job PROJECT:LOCATION.JOB_ID" message.
fn conflict_location(e: &BQError, project: &str, job_id: &str) -> Option<String> {
    let BQError::ResponseError { error } = e else { return None };
    let message = &error.error.message;
    let start = message.find(&format!("{project}:"))? + project.len() + 1;
    let rest = &message[start..];
    let end = rest.find(&format!(".{job_id}"))?;
    let location = &rest[..end];
    (!location.is_empty() && location.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).then(|| location.to_owned())
}

/// The HTTP status of an error BigQuery answered with.
fn http_status(e: &BQError) -> Option<i64> {
    match e {
        BQError::ResponseError { error } => Some(error.error.code),
        _ => None,
    }
}

/// Any client error, classified (see [`codes`]). Messages carry BigQuery's words, never a secret.
pub fn classify(e: BQError) -> AgentError {
    match e {
        BQError::ResponseError { error } => {
            let nested = error.error;
            let reason = nested.errors.first().and_then(|e| e.get("reason")).cloned().unwrap_or_default();
            let status = u16::try_from(nested.code).unwrap_or(0);
            let mut message = format!("BigQuery answered HTTP {}", nested.code);
            if !reason.is_empty() {
                message.push_str(&format!(" ({reason})"));
            }
            message.push_str(&format!(": {}", nested.message));
            codes::from_reason(&reason, status, message)
        }
        BQError::RequestError(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_decode() {
                "sent an answer that is not BigQuery's JSON"
            } else {
                "failed"
            };
            let status = e.status().map(|s| format!(" (HTTP {})", s.as_u16())).unwrap_or_default();
            codes::transport(format!("the request to BigQuery {what}{status}: {}", without_url_secrets(&e.to_string())))
        }
        BQError::SerializationError(e) => codes::transport(format!("BigQuery sent JSON this agent cannot read: {e}")),
        BQError::YupAuthError(e) => auth_error(e),
        BQError::AuthError(e) => codes::credentials(format!("the token endpoint refused the BigQuery credentials: {e}")),
        BQError::NoToken => codes::credentials("the token endpoint returned no access token"),
        BQError::InvalidServiceAccountKey(_)
        | BQError::InvalidServiceAccountAuthenticator(_)
        | BQError::InvalidApplicationDefaultCredentialsAuthenticator(_)
        | BQError::InvalidAuthorizedUserAuthenticator(_)
        | BQError::InvalidInstalledFlowAuthenticator(_) => codes::credentials(format!("unusable BigQuery credentials: {e}")),
        other => codes::transport(format!("BigQuery client error: {other}")),
    }
}

fn auth_error(e: gcp_bigquery_client::yup_oauth2::Error) -> AgentError {
    use gcp_bigquery_client::yup_oauth2::Error as Y;
    match e {
        Y::HttpError(_) | Y::HttpClientError(_) | Y::LowLevelError(_) => {
            codes::transport(format!("cannot reach the token endpoint for the BigQuery credentials: {e}"))
        }
        other => codes::credentials(format!("the BigQuery credentials were refused: {other}")),
    }
}

/// reqwest's messages include the URL; BigQuery URLs carry no secret, but strip a query anyway.
fn without_url_secrets(text: &str) -> String {
    match text.find('?') {
        Some(i) => {
            let end = text[i..].find(|c: char| c == ')' || c.is_whitespace()).map(|j| i + j).unwrap_or(text.len());
            format!("{}{}", &text[..i], &text[end..])
        }
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcp_bigquery_client::error::{NestedResponseError, ResponseError};

    fn response(code: i64, reason: &str) -> BQError {
        BQError::ResponseError {
            error: ResponseError {
                error: NestedResponseError {
                    code,
                    errors: vec![[("reason".to_owned(), reason.to_owned())].into()],
                    message: "Syntax error".into(),
                    status: String::new(),
                },
            },
        }
    }

    #[test]
    fn http_errors_are_classified_by_reason_then_status() {
        let e = classify(response(400, "invalidQuery"));
        assert_eq!(e.code, codes::INVALID_QUERY);
        assert!(e.message.contains("HTTP 400 (invalidQuery): Syntax error"), "{e}");
        assert!(!e.is_retryable());
        assert_eq!(classify(response(503, "backendError")).code, codes::BACKEND);
        assert!(classify(response(503, "")).is_retryable());
        assert_eq!(classify(response(403, "rateLimitExceeded")).code, codes::THROTTLED);
        assert_eq!(classify(response(404, "notFound")).code, codes::NOT_FOUND);
        let mut conflict = response(409, "duplicate");
        if let BQError::ResponseError { error } = &mut conflict {
            error.error.message = "Already Exists: Job proj:asia-northeast1.tern_abc".into();
        }
        assert_eq!(conflict_location(&conflict, "proj", "tern_abc").as_deref(), Some("asia-northeast1"));
        assert_eq!(conflict_location(&conflict, "other", "tern_abc"), None);
        assert_eq!(without_url_secrets("error for url (http://h/x?access_token=s) here"), "error for url (http://h/x) here");
    }
}
