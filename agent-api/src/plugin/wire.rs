//! The payloads of the plugin ABI: protobuf messages (flyteidl's own for tasks, plus the
//! few below) and JSON for settings. Their schema, as `.proto`, is in `docs/plugins.md`;
//! fields are only ever added, so either side may be older.
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::datastore::DataStoreError;
use crate::error::{codes, AgentError, ErrorClass, ErrorOrigin, Retry};
use crate::factory::Exposure;
use crate::proto::flyteidl::{admin, core};
use crate::status::{Phase, TaskStatus};

/// Error codes of plugins (documented in `docs/errors.md`).
pub mod plugin_codes {
    /// The plugin directory cannot be read.
    pub const DIR_UNREADABLE: &str = "TERN-G020";
    /// A library cannot be loaded (not a shared library, missing dependency, wrong platform).
    pub const LOAD_FAILED: &str = "TERN-G021";
    /// A library does not export `tern_plugin_declaration`.
    pub const MISSING_SYMBOL: &str = "TERN-G022";
    /// A library speaks another ABI version, or its declaration is malformed.
    pub const ABI_MISMATCH: &str = "TERN-G023";
    /// A plugin panicked while checking its settings or building its agent.
    pub const PANICKED_AT_START: &str = "TERN-G024";
    /// Two plugins, or a plugin and a built-in agent, declare the same agent name.
    pub const DUPLICATE_NAME: &str = "TERN-G025";
    /// A plugin broke the ABI's contract at run time (undecodable reply, reply dropped).
    pub const PROTOCOL: &str = "TERN-G026";
}

/// An [`AgentError`] on the wire; data store errors also carry their variant, so the
/// receiver rebuilds the very same [`DataStoreError`].
#[derive(Clone, PartialEq, Message)]
pub struct WireError {
    #[prost(string, tag = "1")]
    pub code: String,
    #[prost(string, tag = "2")]
    pub message: String,
    /// 0 user, 1 system.
    #[prost(uint32, tag = "3")]
    pub origin: u32,
    /// 0 permanent, 1 retryable.
    #[prost(uint32, tag = "4")]
    pub retry: u32,
    /// [`ErrorClass`] in declaration order.
    #[prost(uint32, tag = "5")]
    pub class: u32,
    #[prost(uint64, optional, tag = "6")]
    pub retry_after_ms: Option<u64>,
    /// Data store errors: 1 not found, 2 I/O, 3 unsupported URI, 4 outside roots; 0 none.
    #[prost(uint32, tag = "10")]
    pub data_kind: u32,
    #[prost(string, tag = "11")]
    pub uri: String,
    /// I/O: the cause; unsupported URI: what the store handles; outside roots: the roots.
    #[prost(string, tag = "12")]
    pub detail: String,
    /// Outside roots: why.
    #[prost(string, tag = "13")]
    pub why: String,
}

const CLASSES: [ErrorClass; 9] = [
    ErrorClass::NotFound,
    ErrorClass::InvalidArgument,
    ErrorClass::Unimplemented,
    ErrorClass::Unavailable,
    ErrorClass::DeadlineExceeded,
    ErrorClass::ResourceExhausted,
    ErrorClass::FailedPrecondition,
    ErrorClass::PermissionDenied,
    ErrorClass::Internal,
];

impl WireError {
    pub fn from_agent(e: &AgentError) -> Self {
        Self {
            code: e.code.to_string(),
            message: e.message.clone(),
            origin: match e.origin {
                ErrorOrigin::User => 0,
                ErrorOrigin::System => 1,
            },
            retry: match e.retry {
                Retry::Permanent => 0,
                Retry::Retryable => 1,
            },
            class: CLASSES.iter().position(|c| *c == e.class).unwrap_or(8) as u32,
            retry_after_ms: e.retry_after.map(|d| d.as_millis().min(u64::MAX as u128) as u64),
            ..Default::default()
        }
    }

    pub fn into_agent(self) -> AgentError {
        let mut e = AgentError::new(
            self.code,
            self.message,
            if self.origin == 0 { ErrorOrigin::User } else { ErrorOrigin::System },
            if self.retry == 1 { Retry::Retryable } else { Retry::Permanent },
            CLASSES.get(self.class as usize).copied().unwrap_or(ErrorClass::Internal),
        );
        e.retry_after = self.retry_after_ms.map(Duration::from_millis);
        e
    }

    pub fn from_data(e: &DataStoreError) -> Self {
        let mut w = Self::from_agent(&AgentError::from(clone_data_error(e)));
        match e {
            DataStoreError::NotFound { uri } => {
                w.data_kind = 1;
                w.uri = uri.clone();
            }
            DataStoreError::Io { uri, source } => {
                w.data_kind = 2;
                w.uri = uri.clone();
                w.detail = source.to_string();
            }
            DataStoreError::UnsupportedUri { uri, handles } => {
                w.data_kind = 3;
                w.uri = uri.clone();
                w.detail = (*handles).to_owned();
            }
            DataStoreError::OutsideRoots { uri, roots, why } => {
                w.data_kind = 4;
                w.uri = uri.clone();
                w.detail = roots.clone();
                w.why = (*why).to_owned();
            }
        }
        w
    }

    /// The data store error this describes (an I/O error naming the message when it is not
    /// one).
    pub fn into_data(self, uri: &str) -> DataStoreError {
        match self.data_kind {
            1 => DataStoreError::NotFound { uri: self.uri },
            2 => DataStoreError::Io { uri: self.uri, source: std::io::Error::other(self.detail) },
            3 => DataStoreError::UnsupportedUri { uri: self.uri, handles: intern(self.detail) },
            4 => DataStoreError::OutsideRoots { uri: self.uri, roots: self.detail, why: intern(self.why) },
            _ => DataStoreError::Io { uri: uri.to_owned(), source: std::io::Error::other(self.into_agent().to_string()) },
        }
    }

    pub fn encode_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes an error payload; a payload that is not one is itself reported.
    pub fn decode_error(bytes: &[u8], from: &str) -> AgentError {
        match Self::decode(bytes) {
            Ok(w) => w.into_agent(),
            Err(e) => AgentError::internal(
                plugin_codes::PROTOCOL,
                format!("{from} answered an error that cannot be decoded ({e})"),
            ),
        }
    }
}

fn clone_data_error(e: &DataStoreError) -> DataStoreError {
    match e {
        DataStoreError::NotFound { uri } => DataStoreError::NotFound { uri: uri.clone() },
        DataStoreError::Io { uri, source } => {
            DataStoreError::Io { uri: uri.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
        }
        DataStoreError::UnsupportedUri { uri, handles } => DataStoreError::UnsupportedUri { uri: uri.clone(), handles },
        DataStoreError::OutsideRoots { uri, roots, why } => {
            DataStoreError::OutsideRoots { uri: uri.clone(), roots: roots.clone(), why }
        }
    }
}

/// `DataStoreError` holds some texts as `&'static str`; the host's are a handful of
/// constants, so each distinct text is leaked once and reused.
fn intern(text: String) -> &'static str {
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = seen.get(text.as_str()) {
        return s;
    }
    if seen.len() >= 256 {
        return "(a data store the plugin does not know)";
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    seen.insert(leaked);
    leaked
}

/// One task operation (`op`): the per-call context and the operation's arguments.
#[derive(Clone, PartialEq, Message)]
pub struct CallRequest {
    #[prost(string, tag = "1")]
    pub output_prefix: String,
    #[prost(message, optional, tag = "2")]
    pub execution: Option<admin::TaskExecutionMetadata>,
    /// The host's idempotency key (empty: none).
    #[prost(string, tag = "3")]
    pub idempotency_key: String,
    /// Time left before the caller's deadline.
    #[prost(uint64, optional, tag = "4")]
    pub deadline_ms: Option<u64>,
    /// create / execute.
    #[prost(message, optional, tag = "5")]
    pub template: Option<core::TaskTemplate>,
    #[prost(message, optional, tag = "6")]
    pub inputs: Option<core::LiteralMap>,
    /// get / delete / metrics / logs.
    #[prost(bytes = "vec", tag = "7")]
    pub resource_meta: Vec<u8>,
    /// metrics.
    #[prost(string, repeated, tag = "8")]
    pub queries: Vec<String>,
    #[prost(message, optional, tag = "9")]
    pub start_time: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "10")]
    pub end_time: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "11")]
    pub step: Option<prost_types::Duration>,
    /// logs.
    #[prost(uint64, tag = "12")]
    pub log_lines: u64,
    #[prost(string, tag = "13")]
    pub log_token: String,
}

/// A [`TaskStatus`], exactly (its error included).
#[derive(Clone, PartialEq, Message)]
pub struct StatusReply {
    #[prost(int32, tag = "1")]
    pub phase: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, optional, tag = "3")]
    pub outputs: Option<core::LiteralMap>,
    #[prost(message, repeated, tag = "4")]
    pub log_links: Vec<core::TaskLog>,
    #[prost(message, optional, tag = "5")]
    pub custom_info: Option<prost_types::Struct>,
    #[prost(message, optional, tag = "6")]
    pub error: Option<WireError>,
}

impl StatusReply {
    pub fn from_status(s: TaskStatus) -> Self {
        Self {
            phase: s.phase as i32,
            message: s.message,
            outputs: s.outputs,
            log_links: s.log_links,
            custom_info: s.custom_info,
            error: s.error.as_ref().map(WireError::from_agent),
        }
    }

    pub fn into_status(self) -> TaskStatus {
        TaskStatus {
            phase: Phase::try_from(self.phase).unwrap_or(Phase::Undefined),
            message: self.message,
            outputs: self.outputs,
            log_links: self.log_links,
            custom_info: self.custom_info,
            error: self.error.map(WireError::into_agent),
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricsReply {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<core::ExecutionMetricResult>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LogsReply {
    #[prost(message, repeated, tag = "1")]
    pub lines: Vec<admin::LogLine>,
    #[prost(string, tag = "2")]
    pub next_token: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct StringList {
    #[prost(string, repeated, tag = "1")]
    pub items: Vec<String>,
}

/// What the host measured (the plugin's [`HostResources`](crate::factory::HostResources);
/// the host's environment is not passed).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostFacts {
    pub cpus: usize,
    pub memory_bytes: Option<u64>,
    pub temp_dir: String,
}

/// `prepare`'s arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PrepareArgs {
    /// The agent's own keys of `[agents.<name>]` (the gateway's common keys removed).
    pub settings: serde_json::Value,
    pub host: HostFacts,
    /// The concurrency limit in force (`max_concurrency` or the default), if any.
    pub max_concurrency: Option<usize>,
}

/// `prepare`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared {
    /// `safe`, `local_files` or `arbitrary_code`.
    pub exposure: String,
    /// The settings after defaults (what `tern config show` prints).
    pub effective: serde_json::Value,
}

/// The limit a job-scoped agent enforces itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionArgs {
    pub max: usize,
    /// `queue` or `reject`.
    pub on_full: String,
    pub queue_timeout_ms: u64,
}

/// `init`'s arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitArgs {
    pub settings: serde_json::Value,
    pub host: HostFacts,
    pub max_concurrency: Option<usize>,
    /// Only for job-scoped agents with a limit (call-scoped ones are limited by the host).
    pub admission: Option<AdmissionArgs>,
    /// The most verbose level the gateway logs (`error`..`trace`, `off`); absent: `info`.
    #[serde(default)]
    pub log_level: Option<String>,
}

/// `init`'s reply: what the built agent serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Described {
    pub name: String,
    pub sync: bool,
    pub categories: Vec<DescribedCategory>,
    /// The agent's [`StateTable`](crate::states::StateTable), when it declares one.
    #[serde(default)]
    pub backend_states: Option<DescribedStates>,
}

/// A [`StateTable`](crate::states::StateTable) on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DescribedStates {
    /// The agent named in the table's messages.
    pub agent: String,
    pub states: Vec<DescribedState>,
}

/// One [`BackendState`](crate::states::BackendState).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DescribedState {
    pub name: String,
    /// `flyteidl.core.TaskExecution.Phase` as a number.
    pub phase: i32,
    #[serde(default)]
    pub meaning: String,
    /// `user` or `system`.
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

impl DescribedStates {
    pub fn from_table(table: &crate::states::StateTable) -> Self {
        Self {
            agent: table.agent().to_owned(),
            states: table
                .states()
                .map(|s| DescribedState {
                    name: s.name.to_owned(),
                    phase: s.phase as i32,
                    meaning: s.meaning.to_owned(),
                    origin: s.origin.map(|o| match o {
                        ErrorOrigin::User => "user".to_owned(),
                        ErrorOrigin::System => "system".to_owned(),
                    }),
                    code: s.code.map(str::to_owned),
                })
                .collect(),
        }
    }

    /// The table again. A `StateTable` holds `'static` texts, so they are leaked: call this
    /// once per built agent (at start), never per call.
    pub fn leak_into_table(self) -> crate::states::StateTable {
        fn leak(s: String) -> &'static str {
            Box::leak(s.into_boxed_str())
        }
        let states: Vec<crate::states::BackendState> = self
            .states
            .into_iter()
            .map(|s| crate::states::BackendState {
                name: leak(s.name),
                phase: Phase::try_from(s.phase).unwrap_or(Phase::Undefined),
                meaning: leak(s.meaning),
                origin: match s.origin.as_deref() {
                    Some("user") => Some(ErrorOrigin::User),
                    Some("system") => Some(ErrorOrigin::System),
                    _ => None,
                },
                code: s.code.map(leak),
            })
            .collect();
        crate::states::StateTable::detailed(leak(self.agent), Box::leak(states.into_boxed_slice()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DescribedCategory {
    pub name: String,
    pub version: i32,
}

pub fn exposure_name(e: Exposure) -> &'static str {
    match e {
        Exposure::Safe => "safe",
        Exposure::LocalFiles => "local_files",
        Exposure::ArbitraryCode => "arbitrary_code",
    }
}

pub fn exposure_from_name(s: &str) -> Option<Exposure> {
    match s {
        "safe" => Some(Exposure::Safe),
        "local_files" => Some(Exposure::LocalFiles),
        "arbitrary_code" => Some(Exposure::ArbitraryCode),
        _ => None,
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Cow<'static, str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Cow::Borrowed(s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Cow::Owned(s.clone())
    } else {
        Cow::Borrowed("a panic without a message")
    }
}

/// The error a panic inside a task operation becomes (same code as an in-tree agent's).
pub fn call_panic_error(plugin: &str, op: &str, payload: &(dyn std::any::Any + Send)) -> AgentError {
    AgentError::internal(codes::INTERNAL, format!("plugin {plugin} panicked during {op}: {}", panic_message(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_errors_survive_the_wire_exactly() {
        let mut e = AgentError::resource_exhausted("full", Some(Duration::from_millis(1500)));
        e.message = "greeter is full".into();
        for e in [
            e,
            AgentError::user("TERN-X001", "bad"),
            AgentError::not_found(codes::DATA_NOT_FOUND, "nothing"),
            AgentError::unimplemented("GetTaskLogs for greeter"),
            AgentError::permission_denied(codes::DATA_OUTSIDE_ROOTS, "no"),
        ] {
            let bytes = WireError::from_agent(&e).encode_to_vec();
            assert_eq!(WireError::decode_error(&bytes, "test"), e);
        }
        let garbage = WireError::decode_error(b"\xff\xff\xff", "plugin x");
        assert_eq!(garbage.code, plugin_codes::PROTOCOL);
        assert!(garbage.message.contains("plugin x"), "{garbage}");
    }

    #[test]
    fn data_store_errors_survive_the_wire_exactly() {
        let cases = [
            DataStoreError::NotFound { uri: "a/b".into() },
            DataStoreError::UnsupportedUri { uri: "gs://x".into(), handles: "file:// URIs and local paths" },
            DataStoreError::OutsideRoots { uri: "/etc/passwd".into(), roots: "/data".into(), why: ": `..` is not allowed" },
            DataStoreError::Io { uri: "a".into(), source: std::io::Error::other("disk on fire") },
        ];
        for e in cases {
            let back = WireError::decode(WireError::from_data(&e).encode_to_vec().as_slice()).unwrap().into_data("?");
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(AgentError::from(back), AgentError::from(clone_data_error(&e)));
        }
    }

    #[test]
    fn state_tables_survive_the_wire() {
        use crate::states::{BackendState, StateTable};
        static TABLE: StateTable = StateTable::detailed(
            "bq",
            &[
                BackendState::new("PENDING", Phase::Queued).meaning("waiting"),
                BackendState::new("DONE", Phase::Succeeded),
                BackendState::new("ERR", Phase::Failed).code("TERN-X009").system(),
            ],
        );
        let json = serde_json::to_vec(&DescribedStates::from_table(&TABLE)).unwrap();
        let back = serde_json::from_slice::<DescribedStates>(&json).unwrap().leak_into_table();
        assert_eq!(back.agent(), "bq");
        assert_eq!(back.states().collect::<Vec<_>>(), TABLE.states().collect::<Vec<_>>());
        assert_eq!(back.classify("ERR"), TABLE.classify("ERR"));
    }

    #[test]
    fn statuses_survive_the_wire_exactly() {
        let failed = TaskStatus::failed(AgentError::unavailable("TERN-X002", "backend down")).with_message("down");
        let ok = TaskStatus::succeeded(Some(core::LiteralMap::default())).with_message("done");
        for s in [failed, ok, TaskStatus::running("going")] {
            let bytes = StatusReply::from_status(s.clone()).encode_to_vec();
            assert_eq!(StatusReply::decode(bytes.as_slice()).unwrap().into_status(), s);
        }
    }
}
