//! Talking to Snowflake: sessions through the `snowflake-api` crate, and the connector endpoints
//! the crate lacks, called with that same session.
//!
//! **What the crate does** (0.14, default features): the login — password or key-pair JWT
//! (`cert-auth`) —, the session and master tokens and their renewal, and synchronous statements
//! (`exec_raw`: the result as Arrow IPC bytes, chunked results included). The agent runs its own
//! small statements through it: the idempotency lookup in `QUERY_HISTORY_BY_USER`,
//! `SYSTEM$CANCEL_QUERY`, and `RESULT_SCAN` when results are materialized.
//!
//! **What it lacks, and so is done here with reqwest and the crate's session token:** its query
//! request is always synchronous (`asyncExec: false`), has no bind variables and no statement
//! parameters (so no `QUERY_TAG`), returns no query id, and there is no status or abort call.
//! A task must not hold a gRPC call for the length of a query, so the task's statement is
//! submitted like the Python connector's `execute_async` — `POST /queries/v1/query-request` with
//! `asyncExec: true`, `bindings` and `parameters.QUERY_TAG` — and its status is read like
//! `get_query_status` — `GET /monitoring/queries/{id}` — on every GetTask. The session token is
//! taken from the `Authorization` header the crate sends (a middleware sees it; it lives only
//! in memory), and the statement sequence numbers continue the crate's own counter.
//!
//! **Endpoint.** The crate builds `https://{account}.snowflakecomputing.com/...` itself; a
//! middleware on the client handed to it rewrites scheme, host, port and path prefix to the
//! configured endpoint (a private link, a proxy, an emulator). It also lets the crate see only
//! the account *locator* (`xy12345` of `xy12345.eu-west-1`), which is what Snowflake expects in
//! a key-pair JWT and the login's `ACCOUNT_NAME`, while requests go to the full account's host.
//!
//! **Sessions** are pooled per (account, user, role, warehouse, database, schema): a poll costs
//! one HTTP call, not a login (flytekit's connector logs in on every poll). Nothing about a
//! session is needed for correctness: after a restart, or when Snowflake says the session
//! expired, the agent logs in again.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use serde::Serialize;
use serde_json::Value;
use snowflake_api::{AuthArgs, AuthType, CertificateArgs, PasswordArgs, RawQueryResult, SnowflakeApiBuilder, SnowflakeApiError};
use tern_agent_api::prelude::{AgentError, Secret};

use crate::codes;
use crate::params::BoundQuery;
use crate::states::NO_DATA;
use crate::template::Target;

const SNOWFLAKE_DOMAIN: &str = "snowflakecomputing.com";
/// Snowflake's code for "asynchronous execution in progress" (the answer to `asyncExec: true`).
const ASYNC_IN_PROGRESS: &str = "333334";
/// "Query in progress" (a synchronous request that outlived the server's wait).
const IN_PROGRESS: &str = "333333";
/// Most sessions kept; beyond, the oldest is dropped (it simply logs in again when needed).
const MAX_SESSIONS: usize = 256;

// -----------------------------------------------------------------------------------------------
// Endpoint
// -----------------------------------------------------------------------------------------------

/// Where an account's connector API is: `https://{account}.snowflakecomputing.com` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The base URL text, possibly with `{account}` in its host.
    template: String,
}

impl Endpoint {
    /// Snowflake's own: `https://{account}.snowflakecomputing.com`.
    pub fn snowflake() -> Self {
        Self { template: format!("https://{{account}}.{SNOWFLAKE_DOMAIN}") }
    }

    /// A configured endpoint: a URL (`http://127.0.0.1:8085`, `https://{account}.privatelink.snowflakecomputing.com`,
    /// `https://proxy/snowflake`) or a bare host (`https` then).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().trim_end_matches('/');
        let template = if text.contains("://") { text.to_owned() } else { format!("https://{text}") };
        let probe = template.replace("{account}", "account");
        let url = Url::parse(&probe).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?}: the scheme must be http or https"));
        }
        if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!("{text:?}: expected scheme://host[:port][/path], without credentials, query or fragment"));
        }
        Ok(Self { template })
    }

    /// The base URL for `account` (a valid account identifier), with a trailing `/`.
    pub fn base(&self, account: &str) -> Url {
        let text = format!("{}/", self.template.replace("{account}", &account.to_ascii_lowercase()));
        Url::parse(&text).unwrap_or_else(|_| Url::parse("https://invalid.invalid/").expect("static URL"))
    }
}

/// The account part Snowflake expects in a JWT and in the login's `ACCOUNT_NAME`: the locator
/// without region and cloud (`xy12345` of `xy12345.eu-west-1.aws`); `org-account` as is.
pub fn account_name(account: &str) -> &str {
    account.split('.').next().unwrap_or(account)
}

/// Rewrites the crate's `https://<account>.snowflakecomputing.com/<path>` to the endpoint, and
/// remembers the session token it sends.
struct Rewrite {
    /// The host the crate builds (`<locator>.snowflakecomputing.com`, lowercase).
    crate_host: String,
    base: Url,
    token: Arc<Mutex<Option<HeaderValue>>>,
}

#[async_trait::async_trait]
impl Middleware for Rewrite {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let is_snowflake = req.url().host_str().is_some_and(|h| h.eq_ignore_ascii_case(&self.crate_host));
        if is_snowflake {
            let path = req.url().path().trim_start_matches('/').to_owned();
            let query = req.url().query().map(str::to_owned);
            let mut url = self.base.join(&path).unwrap_or_else(|_| self.base.clone());
            url.set_query(query.as_deref());
            *req.url_mut() = url;
            if path.ends_with("queries/v1/query-request") {
                if let Some(auth) = req.headers().get(AUTHORIZATION) {
                    let mut auth = auth.clone();
                    auth.set_sensitive(true);
                    *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(auth);
                }
            }
        }
        next.run(req, extensions).await
    }
}

// -----------------------------------------------------------------------------------------------
// Credentials and sessions
// -----------------------------------------------------------------------------------------------

/// Resolved credentials for one login (never printed).
#[derive(Clone)]
pub enum Credentials {
    Password(Secret),
    PrivateKey(Secret),
}

impl Credentials {
    /// Tells a login's credentials from others (a rotated password or key file), so a pooled
    /// session of older credentials is replaced, not reused. In memory only, never shown.
    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match self {
            Self::Password(s) => (0u8, s.expose()).hash(&mut h),
            Self::PrivateKey(s) => (1u8, s.expose()).hash(&mut h),
        }
        h.finish()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Credentials::Password(***)",
            Self::PrivateKey(_) => "Credentials::PrivateKey(***)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    target: Target,
    role: Option<String>,
}

/// A query's status as the monitoring endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryState {
    /// Snowflake's status (`RUNNING`, `SUCCESS`, …), or `NO_DATA` when it has no record.
    pub status: String,
    pub error_code: String,
    pub error_message: String,
}

/// What submitting a statement gave.
#[derive(Debug, Clone)]
pub enum Submission {
    /// Accepted: the query id (asynchronous in progress, or already finished).
    Accepted { query_id: String },
    /// Refused at submission (compilation error, missing object, …), with the query id when
    /// Snowflake assigned one.
    Rejected { query_id: Option<String>, error: AgentError },
}

/// The rows of a statement run through the crate.
pub enum Rows {
    /// Arrow IPC streams (Snowflake's Arrow encoding; `results.rs` reads them).
    Arrow(Vec<Bytes>),
    /// A JSON rowset: rows of text cells (or null), and the column names.
    Json { columns: Vec<String>, rows: Vec<Vec<Option<String>>> },
    Empty,
}

/// A result column as Snowflake describes it (`rowtype`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `FIXED`, `REAL`, `TEXT`, `TIMESTAMP_NTZ`, … (upper case).
    pub kind: String,
    pub scale: i64,
    pub precision: i64,
}

/// Errors while talking to a session: the session is gone (log in again), or a real error.
enum CallError {
    SessionGone(String),
    Failed(AgentError),
}

impl From<AgentError> for CallError {
    fn from(e: AgentError) -> Self {
        Self::Failed(e)
    }
}

struct Session {
    api: snowflake_api::SnowflakeApi,
    /// [`Credentials::fingerprint`] of the login: the crate logs in again with these.
    credentials: u64,
    token: Arc<Mutex<Option<HeaderValue>>>,
    /// The crate's statement sequence number, mirrored (each crate statement takes one).
    sequence: AtomicU64,
    base: Url,
    http: reqwest::Client,
}

impl Session {
    fn open(target: &Target, role: Option<&str>, credentials: &Credentials, endpoint: &Endpoint, timeout: Duration, retries: u32) -> Result<Self, AgentError> {
        let locator = account_name(&target.account).to_ascii_lowercase();
        let base = endpoint.base(&target.account);
        let token = Arc::new(Mutex::new(None));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tern-agent-snowflake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| codes::unavailable(format!("cannot build the HTTP client: {e}")))?;
        let retry = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(retries);
        let client: ClientWithMiddleware = reqwest_middleware::ClientBuilder::new(http.clone())
            .with(Rewrite { crate_host: format!("{locator}.{SNOWFLAKE_DOMAIN}"), base: base.clone(), token: token.clone() })
            .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(retry))
            .build();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let auth_type = match credentials {
            Credentials::Password(p) => AuthType::Password(PasswordArgs { password: p.expose().to_owned() }),
            Credentials::PrivateKey(k) => {
                let pem = k.expose().trim();
                if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
                    return Err(AgentError::user(
                        codes::NO_CREDENTIALS,
                        "[agents.snowflake] private_key is not an unencrypted PKCS#8 PEM key (\"-----BEGIN PRIVATE KEY-----\"); \
                         convert one with `openssl pkcs8 -topk8 -nocrypt`",
                    ));
                }
                AuthType::Certificate(CertificateArgs { private_key_pem: pem.to_owned() })
            }
        };
        let auth = AuthArgs {
            account_identifier: locator,
            warehouse: non_empty(&target.warehouse),
            database: non_empty(&target.database),
            schema: non_empty(&target.schema),
            username: target.user.clone(),
            role: role.map(str::to_owned),
            auth_type,
        };
        let api = SnowflakeApiBuilder::new(auth)
            .with_client(client)
            .build()
            .map_err(|e| codes::unavailable(format!("cannot set up the Snowflake client: {e}")))?;
        Ok(Self { api, credentials: credentials.fingerprint(), token, sequence: AtomicU64::new(0), base, http })
    }

    /// Runs `sql` through the crate (logging in first when needed).
    async fn exec(&self, sql: &str) -> Result<Rows, CallError> {
        self.sequence.fetch_add(1, Ordering::SeqCst);
        match self.api.exec_raw(sql).await {
            Ok(RawQueryResult::Bytes(chunks)) => Ok(Rows::Arrow(chunks)),
            Ok(RawQueryResult::Json(json)) => {
                let columns = json.schema.iter().map(|f| f.name.clone()).collect();
                let rows = match json.value {
                    Value::Array(rows) => rows
                        .into_iter()
                        .map(|row| match row {
                            Value::Array(cells) => cells.into_iter().map(cell_text).collect(),
                            other => vec![cell_text(other)],
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(Rows::Json { columns, rows })
            }
            Ok(RawQueryResult::Empty) => Ok(Rows::Empty),
            Err(e) => Err(classify_crate_error(e)),
        }
    }

    /// The session token header, logging in (through the crate) when there is none yet.
    async fn auth(&self) -> Result<HeaderValue, CallError> {
        if let Some(t) = self.token.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(t);
        }
        // A statement is the crate's only way to log in; this one needs no warehouse.
        self.exec("SELECT 1").await?;
        self.token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| CallError::Failed(codes::unavailable("logged in, but Snowflake's answer carried no session token")))
    }

    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst) + 1
    }

    async fn submit(&self, query: &BoundQuery, tag: &str, request_id: &str) -> Result<Submission, CallError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            sql_text: &'a str,
            async_exec: bool,
            sequence_id: u64,
            query_submission_time: u128,
            is_internal: bool,
            parameters: HashMap<&'a str, &'a str>,
            #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            bindings: &'a std::collections::BTreeMap<String, crate::params::Binding>,
        }
        let auth = self.auth().await?;
        let body = Body {
            sql_text: &query.statement,
            async_exec: true,
            sequence_id: self.next_sequence(),
            query_submission_time: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis(),
            is_internal: false,
            parameters: HashMap::from([("QUERY_TAG", tag)]),
            bindings: &query.bindings,
        };
        let mut url = self.url("queries/v1/query-request");
        url.query_pairs_mut().append_pair("requestId", request_id).append_pair("request_guid", &uuid::Uuid::new_v4().to_string());
        let sent = self
            .http
            .post(url)
            .header(ACCEPT, "application/snowflake")
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth)
            .json(&body)
            .send()
            .await;
        let answer = read_answer(sent, "submitting the query").await?;
        let data = answer.data.as_ref();
        let query_id = data.and_then(|d| d.get("queryId")).and_then(Value::as_str).filter(|q| !q.is_empty()).map(str::to_owned);
        if answer.success {
            // 333334 (asynchronous, in progress), 333333 (in progress) or a finished result (an
            // emulator answering synchronously): all carry the id, and GetTask polls every one.
            let running = matches!(answer.code.as_deref(), Some(ASYNC_IN_PROGRESS) | Some(IN_PROGRESS));
            tracing::debug!(?query_id, running, "Snowflake accepted the query");
            return match query_id {
                Some(query_id) => Ok(Submission::Accepted { query_id }),
                None => Err(CallError::Failed(codes::unavailable(format!(
                    "Snowflake accepted the query without a query id (code {:?})",
                    answer.code
                )))),
            };
        }
        let code = answer.code.clone().unwrap_or_default();
        if codes::is_session_gone(&code) {
            return Err(CallError::SessionGone(code));
        }
        let sql_state = data.and_then(|d| d.get("sqlState")).and_then(Value::as_str).unwrap_or_default();
        let internal = data.and_then(|d| d.get("internalError")).and_then(Value::as_bool).unwrap_or(false);
        let error = codes::from_snowflake(&code, sql_state, answer.message.as_deref().unwrap_or_default(), internal);
        Ok(Submission::Rejected { query_id, error })
    }

    async fn status(&self, query_id: &str) -> Result<QueryState, CallError> {
        let auth = self.auth().await?;
        let url = self.url(&format!("monitoring/queries/{query_id}"));
        let sent = self.http.get(url).header(ACCEPT, "application/json").header(AUTHORIZATION, auth).send().await;
        let answer = read_answer(sent, "reading the query's status").await?;
        if !answer.success {
            let code = answer.code.clone().unwrap_or_default();
            if codes::is_session_gone(&code) {
                return Err(CallError::SessionGone(code));
            }
            return Err(CallError::Failed(codes::unavailable(codes::describe(
                &code,
                "",
                &format!("reading the status of query {query_id}: {}", answer.message.unwrap_or_default()),
            ))));
        }
        let first = answer.data.as_ref().and_then(|d| d.get("queries")).and_then(Value::as_array).and_then(|q| q.first());
        let Some(query) = first else {
            return Ok(QueryState { status: NO_DATA.into(), error_code: String::new(), error_message: String::new() });
        };
        let text = |k: &str| match query.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        Ok(QueryState { status: text("status"), error_code: text("errorCode"), error_message: text("errorMessage") })
    }

    /// The columns `sql` returns, read from the `rowtype` of a synchronous run (for results with
    /// no rows, whose Arrow stream the crate does not return). Not `describeOnly`: fakesnow
    /// cannot describe `RESULT_SCAN`, and re-reading an empty result costs nothing.
    async fn describe(&self, sql: &str) -> Result<Vec<Column>, CallError> {
        let auth = self.auth().await?;
        let body = serde_json::json!({
            "sqlText": sql, "asyncExec": false, "sequenceId": self.next_sequence(), "isInternal": false,
        });
        let mut url = self.url("queries/v1/query-request");
        url.query_pairs_mut().append_pair("requestId", &uuid::Uuid::new_v4().to_string());
        let sent = self
            .http
            .post(url)
            .header(ACCEPT, "application/snowflake")
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth)
            .json(&body)
            .send()
            .await;
        let answer = read_answer(sent, "describing the result").await?;
        if !answer.success {
            let code = answer.code.clone().unwrap_or_default();
            if codes::is_session_gone(&code) {
                return Err(CallError::SessionGone(code));
            }
            return Err(CallError::Failed(codes::from_snowflake(&code, "", answer.message.as_deref().unwrap_or_default(), false)));
        }
        let rowtype = answer.data.as_ref().and_then(|d| d.get("rowtype")).and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(rowtype
            .iter()
            .map(|c| Column {
                name: c.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                kind: c.get("type").and_then(Value::as_str).unwrap_or("text").to_ascii_uppercase(),
                scale: c.get("scale").and_then(Value::as_i64).unwrap_or(0),
                precision: c.get("precision").and_then(Value::as_i64).unwrap_or(38),
            })
            .collect())
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }
}

fn cell_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// The connector API's envelope: `{"data": …, "code": …, "message": …, "success": …}`.
struct Answer {
    success: bool,
    code: Option<String>,
    message: Option<String>,
    data: Option<Value>,
}

async fn read_answer(sent: Result<reqwest::Response, reqwest::Error>, doing: &str) -> Result<Answer, CallError> {
    let response = sent.map_err(|e| codes::unavailable(format!("{doing}: cannot reach Snowflake: {}", error_chain(&e))))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| codes::unavailable(format!("{doing}: the answer was cut: {}", error_chain(&e))))?;
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string())));
    if status.as_u16() == 401 || status.as_u16() == 403 {
        // Snowflake (and fakesnow) answer an unknown or expired token so.
        return Err(CallError::SessionGone(field("code").unwrap_or_else(|| status.as_u16().to_string())));
    }
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        return Err(CallError::Failed(codes::unavailable(format!(
            "{doing}: Snowflake answered HTTP {status}{}",
            field("message").map(|m| format!(": {m}")).unwrap_or_default()
        ))));
    }
    let Some(obj) = json.as_ref().filter(|j| j.is_object()) else {
        return Err(CallError::Failed(codes::unavailable(format!(
            "{doing}: Snowflake answered HTTP {status} with a body that is not JSON ({} bytes)",
            body.len()
        ))));
    };
    if !status.is_success() {
        // Another HTTP error (a proxy's 404, a 400 without a Snowflake code): TERN-F005 as documented,
        // system and retryable a bounded number of times, never INTERNAL.
        return Err(CallError::Failed(codes::unavailable(format!(
            "{doing}: Snowflake refused the request with HTTP {status}: {}",
            field("message").unwrap_or_default()
        ))));
    }
    Ok(Answer {
        success: obj.get("success").and_then(Value::as_bool).unwrap_or(false),
        code: field("code"),
        message: field("message"),
        data: obj.get("data").cloned(),
    })
}

/// An error and its sources, for messages (reqwest's own text omits the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn classify_crate_error(e: SnowflakeApiError) -> CallError {
    use snowflake_api::connection::ConnectionError;
    match e {
        SnowflakeApiError::ApiError(code, message) => {
            if codes::is_session_gone(&code) {
                CallError::SessionGone(code)
            } else {
                CallError::Failed(codes::from_snowflake(&code, "", &message, false))
            }
        }
        SnowflakeApiError::AuthError(auth) => {
            use snowflake_api_auth::AuthErrorView;
            match AuthErrorView::of(&auth) {
                AuthErrorView::Failed(code, _) if codes::is_session_gone(&code) => CallError::SessionGone(code),
                AuthErrorView::Failed(code, message) if code.is_empty() => CallError::Failed(codes::unavailable(format!(
                    "logging in to Snowflake: the answer was not a login answer{}",
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                ))),
                AuthErrorView::Failed(code, message) => {
                    CallError::Failed(codes::auth_failed(format!("Snowflake refused the login: {}", codes::describe(&code, "", &message))))
                }
                AuthErrorView::Request(text) => CallError::Failed(codes::unavailable(format!("logging in to Snowflake: {text}"))),
                AuthErrorView::Key(text) => CallError::Failed(AgentError::user(
                    codes::NO_CREDENTIALS,
                    format!("[agents.snowflake] private_key cannot sign a login token: {text}"),
                )),
                AuthErrorView::Other(text) => CallError::Failed(codes::unavailable(format!("logging in to Snowflake: {text}"))),
            }
        }
        SnowflakeApiError::RequestError(ConnectionError::Deserialization(e)) => {
            CallError::Failed(codes::unavailable(format!("Snowflake's answer could not be read: {e}")))
        }
        SnowflakeApiError::RequestError(e) => CallError::Failed(codes::unavailable(format!("cannot reach Snowflake: {}", error_chain(&e)))),
        other => CallError::Failed(codes::unavailable(format!("Snowflake client error: {}", error_chain(&other)))),
    }
}

/// The crate keeps its `AuthError` in a private module; its variants are read through `Display`
/// and the public error chain only.
mod snowflake_api_auth {
    pub enum AuthErrorView {
        /// Snowflake refused the login (code, message); an empty code: the answer was not a login answer.
        Failed(String, String),
        Request(String),
        Key(String),
        Other(String),
    }

    impl AuthErrorView {
        pub fn of(e: &(dyn std::error::Error + 'static)) -> Self {
            let text = e.to_string();
            // "Failed to authenticate. Error code: {code}. Message: {message}"
            if let Some(rest) = text.strip_prefix("Failed to authenticate. Error code: ") {
                let (code, message) = rest.split_once(". Message: ").unwrap_or((rest, ""));
                return Self::Failed(code.trim().to_owned(), message.trim().to_owned());
            }
            if text.contains("Unexpected API response") {
                return Self::Failed(String::new(), String::new());
            }
            if let Some(source) = e.source() {
                let chain = super::error_chain(e);
                let lower = format!("{} {}", chain, source).to_ascii_lowercase();
                if ["pkcs", "pem", "jwt", "rsa"].iter().any(|w| lower.contains(w)) {
                    return Self::Key(chain);
                }
                return Self::Request(chain);
            }
            Self::Other(text)
        }
    }
}

// -----------------------------------------------------------------------------------------------
// The pool
// -----------------------------------------------------------------------------------------------

/// Sessions per login, and the calls the agent makes.
pub struct SnowflakeClient {
    endpoint: Endpoint,
    role: Option<String>,
    timeout: Duration,
    /// Retries of a transient HTTP failure (`max_retries`).
    retries: u32,
    sessions: Mutex<HashMap<SessionKey, Arc<Session>>>,
}

impl SnowflakeClient {
    pub fn new(endpoint: Endpoint, role: Option<String>, timeout: Duration, retries: u32) -> Self {
        Self { endpoint, role, timeout, retries, sessions: Mutex::new(HashMap::new()) }
    }

    /// The base URL of `account`'s API (for messages and links).
    pub fn base(&self, account: &str) -> Url {
        self.endpoint.base(account)
    }

    fn session(&self, target: &Target, credentials: &Credentials) -> Result<Arc<Session>, AgentError> {
        let key = SessionKey { target: target.clone(), role: self.role.clone() };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get(&key) {
            Some(s) if s.credentials == credentials.fingerprint() => return Ok(s.clone()),
            // The secret was rotated since this session logged in: log in with the current one (the
            // crate would otherwise renew the session with the old password or key).
            Some(_) => {
                sessions.remove(&key);
            }
            None => {}
        }
        if sessions.len() >= MAX_SESSIONS {
            if let Some(k) = sessions.keys().next().cloned() {
                sessions.remove(&k);
            }
        }
        let session = Arc::new(Session::open(target, self.role.as_deref(), credentials, &self.endpoint, self.timeout, self.retries)?);
        sessions.insert(key, session.clone());
        Ok(session)
    }

    fn forget(&self, target: &Target, session: &Arc<Session>) {
        let key = SessionKey { target: target.clone(), role: self.role.clone() };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.get(&key).is_some_and(|s| Arc::ptr_eq(s, session)) {
            sessions.remove(&key);
        }
    }

    /// Runs `call` on the target's session; when Snowflake says the session is gone, logs in
    /// again and runs it once more.
    async fn with_session<T, F, Fut>(&self, target: &Target, credentials: &Credentials, call: F) -> Result<T, AgentError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        for attempt in 0..2 {
            let session = self.session(target, credentials)?;
            match call(session.clone()).await {
                Ok(v) => return Ok(v),
                Err(CallError::Failed(e)) => return Err(e),
                Err(CallError::SessionGone(code)) => {
                    self.forget(target, &session);
                    if attempt == 1 {
                        return Err(codes::unavailable(format!(
                            "Snowflake ended the session right after logging in (code {code}); try again"
                        )));
                    }
                    tracing::debug!(account = %target.account, code, "Snowflake session gone; logging in again");
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Runs a statement synchronously through the crate.
    pub async fn exec(&self, target: &Target, credentials: &Credentials, sql: &str) -> Result<Rows, AgentError> {
        self.with_session(target, credentials, |s| async move { s.exec(sql).await }).await
    }

    /// Submits the task's statement asynchronously, tagged.
    pub async fn submit(
        &self,
        target: &Target,
        credentials: &Credentials,
        query: &BoundQuery,
        tag: &str,
        request_id: &str,
    ) -> Result<Submission, AgentError> {
        self.with_session(target, credentials, |s| async move { s.submit(query, tag, request_id).await }).await
    }

    /// The columns `sql` would return.
    pub async fn describe(&self, target: &Target, credentials: &Credentials, sql: &str) -> Result<Vec<Column>, AgentError> {
        self.with_session(target, credentials, |s| async move { s.describe(sql).await }).await
    }

    /// The query's status.
    pub async fn status(&self, target: &Target, credentials: &Credentials, query_id: &str) -> Result<QueryState, AgentError> {
        self.with_session(target, credentials, |s| async move { s.status(query_id).await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::snowflake();
        assert_eq!(e.base("MyOrg-Acct").as_str(), "https://myorg-acct.snowflakecomputing.com/");
        assert_eq!(e.base("xy12345.eu-west-1").as_str(), "https://xy12345.eu-west-1.snowflakecomputing.com/");
        let e = Endpoint::parse("http://127.0.0.1:8085").unwrap();
        assert_eq!(e.base("a").as_str(), "http://127.0.0.1:8085/");
        let e = Endpoint::parse("https://{account}.privatelink.snowflakecomputing.com/").unwrap();
        assert_eq!(e.base("org-a").as_str(), "https://org-a.privatelink.snowflakecomputing.com/");
        let e = Endpoint::parse("proxy.internal:8443/snowflake").unwrap();
        assert_eq!(e.base("a").join("queries/v1/query-request").unwrap().as_str(), "https://proxy.internal:8443/snowflake/queries/v1/query-request");
        for bad in ["ftp://x", "http://u:p@x", "http://x?a=b", "://"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(account_name("xy12345.eu-west-1.aws"), "xy12345");
        assert_eq!(account_name("org-acct"), "org-acct");
    }

    #[tokio::test]
    async fn unexpected_http_statuses_are_f005_retryable_never_internal() {
        use tern_agent_api::error::{ErrorClass, ErrorOrigin};
        let answer = |status: u16| {
            let body = r#"{"message":"no such route","success":false}"#;
            Ok(reqwest::Response::from(http::Response::builder().status(status).body(body).unwrap()))
        };
        for status in [400, 404, 405, 500, 503, 429] {
            match read_answer(answer(status), "reading the query's status").await {
                Err(CallError::Failed(e)) => {
                    assert_eq!((e.code.as_ref(), e.origin, e.class), (codes::UNAVAILABLE, ErrorOrigin::System, ErrorClass::Unavailable), "{status}");
                    assert!(e.is_retryable(), "{status}");
                    assert!(e.message.contains(&status.to_string()), "{status}: {}", e.message);
                }
                _ => panic!("HTTP {status} is not a classified failure"),
            }
        }
        assert!(matches!(read_answer(answer(401), "x").await, Err(CallError::SessionGone(_))));
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::Password(Secret::new("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn crate_auth_errors_are_read_from_their_text() {
        // The crate's AuthError is private; its Display text is its public face.
        #[derive(Debug)]
        struct E(&'static str);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {}
        match snowflake_api_auth::AuthErrorView::of(&E("Failed to authenticate. Error code: 390100. Message: Incorrect username or password was specified.")) {
            snowflake_api_auth::AuthErrorView::Failed(code, message) => {
                assert_eq!(code, "390100");
                assert_eq!(message, "Incorrect username or password was specified.");
            }
            _ => panic!("not read as a refused login"),
        }
    }
}
