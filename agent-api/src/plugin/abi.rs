//! The C ABI between the gateway (host) and a plugin library: `#[repr(C)]` tables of
//! `extern "C"` functions whose arguments and replies are byte buffers (protobuf or JSON,
//! see [`super::wire`]). No Rust type crosses the boundary, so a plugin built by another
//! compiler version, with other settings or against another `tern-agent-api` version works
//! as long as [`ABI_VERSION`] matches.
//!
//! # Rules both sides keep
//! - The library exports one symbol, [`DECLARATION_SYMBOL`]: a function returning a pointer
//!   to a static [`PluginDeclaration`]. Its first field is the ABI version; the host reads
//!   that `u32` alone and reads nothing else unless it equals [`ABI_VERSION`].
//! - Every result travels through a [`ReplyFn`] `(ctx, status, ptr, len)`, called **exactly
//!   once** per call, possibly from another thread and after the call returned (data
//!   store, task calls) or before it returns (settings, init, secrets).
//! - Buffers are borrowed: valid only for the duration of the call or callback that
//!   receives them. The receiver copies what it keeps.
//! - No panic unwinds across the boundary: every entry point catches it and answers
//!   [`STATUS_ERROR`] with an encoded error instead.
//! - Any change to a struct or a signature here is a new [`ABI_VERSION`]. Message payloads
//!   evolve inside protobuf/JSON (new fields are ignored by older readers) without one.
use std::ffi::c_void;

/// The ABI this crate speaks. Checked by the host before anything else is read.
pub const ABI_VERSION: u32 = 1;

/// Name of the one symbol a plugin exports: `extern "C" fn() -> *const PluginDeclaration`.
pub const DECLARATION_SYMBOL: &str = "tern_plugin_declaration";

/// Version of `tern-agent-api` a plugin was built against (informational: printed, not
/// required to match).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Reply status: the payload is the operation's result.
pub const STATUS_OK: u32 = 0;
/// Reply status: the payload is an encoded [`super::wire::WireError`].
pub const STATUS_ERROR: u32 = 1;

/// Where a result goes: `ctx` is the caller's opaque context, `ptr`/`len` the payload
/// (borrowed for the duration of this call; `ptr` may be null when `len` is 0).
pub type ReplyFn = unsafe extern "C" fn(ctx: *mut c_void, status: u32, ptr: *const u8, len: usize);

/// A borrowed UTF-8 text (not NUL-terminated).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    pub const fn new(s: &str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }

    /// The text, or `None` when the pointer is null or the bytes are not UTF-8.
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` readable bytes that stay valid for `'a`.
    pub unsafe fn as_str<'a>(&self) -> Option<&'a str> {
        if self.ptr.is_null() {
            return if self.len == 0 { Some("") } else { None };
        }
        // SAFETY: the caller guarantees `ptr` points to `len` readable bytes living for 'a.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).ok()
    }
}

/// Admission scope declared by an agent ([`crate::factory::AdmissionScope`]).
pub const ADMISSION_CALL: u32 = 0;
pub const ADMISSION_JOB: u32 = 1;

/// Operations of [`AgentDeclaration::call`]; the request is an encoded
/// [`super::wire::CallRequest`].
pub mod op {
    /// Async create. Reply: the `resource_meta` bytes.
    pub const CREATE: u32 = 1;
    /// Async get. Reply: [`StatusReply`](crate::plugin::wire::StatusReply).
    pub const GET: u32 = 2;
    /// Async delete. Reply: empty.
    pub const DELETE: u32 = 3;
    /// Async metrics. Reply: [`MetricsReply`](crate::plugin::wire::MetricsReply).
    pub const METRICS: u32 = 4;
    /// Async logs. Reply: [`LogsReply`](crate::plugin::wire::LogsReply).
    pub const LOGS: u32 = 5;
    /// Sync execute. Reply: [`StatusReply`](crate::plugin::wire::StatusReply).
    pub const EXECUTE: u32 = 6;

    /// For messages.
    pub fn name(op: u32) -> &'static str {
        match op {
            CREATE => "create",
            GET => "get",
            DELETE => "delete",
            METRICS => "metrics",
            LOGS => "logs",
            EXECUTE => "execute",
            _ => "an unknown operation",
        }
    }
}

/// What [`DECLARATION_SYMBOL`] returns. `abi_version` MUST stay the first field in every
/// future version.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDeclaration {
    pub abi_version: u32,
    /// Entries in `agents`.
    pub agent_count: u32,
    /// The `tern-agent-api` version the plugin was built with ([`API_VERSION`]).
    pub api_version: StrRef,
    pub agents: *const AgentDeclaration,
}

// SAFETY: a declaration is immutable static data (pointers to static texts and functions).
unsafe impl Sync for PluginDeclaration {}

/// Checks settings. Args: JSON [`PrepareArgs`](crate::plugin::wire::PrepareArgs). Reply
/// (before returning): JSON [`Prepared`](crate::plugin::wire::Prepared) or an error naming the
/// key.
pub type PrepareFn = unsafe extern "C" fn(args: *const u8, len: usize, reply: ReplyFn, reply_ctx: *mut c_void);
/// Builds the agent. Args: JSON [`InitArgs`](crate::plugin::wire::InitArgs); `host` stays valid
/// until the plugin calls its `release`. On success `*instance` is set and the reply (before
/// returning) is JSON [`Described`](crate::plugin::wire::Described).
pub type InitFn = unsafe extern "C" fn(
    args: *const u8,
    len: usize,
    host: *const HostVTable,
    instance: *mut *mut c_void,
    reply: ReplyFn,
    reply_ctx: *mut c_void,
);
/// Runs one operation ([`op`]) on an instance; replies once, usually later, from another
/// thread.
pub type CallFn = unsafe extern "C" fn(
    instance: *mut c_void,
    op: u32,
    request: *const u8,
    len: usize,
    reply: ReplyFn,
    reply_ctx: *mut c_void,
);
/// Releases an instance (calls still running finish first).
pub type DropInstanceFn = unsafe extern "C" fn(instance: *mut c_void);

/// One agent a plugin offers: an [`AgentFactory`](crate::factory::AgentFactory) seen through
/// the ABI. Function pointers are `Option`s (null in C) so a declaration written in any
/// language can be checked; the host refuses one with a null function.
#[repr(C)]
#[derive(Debug)]
pub struct AgentDeclaration {
    /// Section name, `[agents.<name>]`.
    pub name: StrRef,
    pub description: StrRef,
    /// [`ADMISSION_CALL`] or [`ADMISSION_JOB`].
    pub admission: u32,
    pub prepare: Option<PrepareFn>,
    pub init: Option<InitFn>,
    pub call: Option<CallFn>,
    pub drop_instance: Option<DropInstanceFn>,
}

// SAFETY: immutable static data.
unsafe impl Sync for AgentDeclaration {}

/// A data store operation on one URI whose reply comes later.
pub type DataFn = unsafe extern "C" fn(ctx: *const c_void, uri: StrRef, reply: ReplyFn, reply_ctx: *mut c_void);
/// A data store write: `data` is copied before the function returns; the reply comes later.
pub type DataWriteFn =
    unsafe extern "C" fn(ctx: *const c_void, uri: StrRef, data: *const u8, len: usize, reply: ReplyFn, reply_ctx: *mut c_void);
/// A secret lookup whose reply comes before the function returns.
pub type SecretFn = unsafe extern "C" fn(ctx: *const c_void, text: StrRef, reply: ReplyFn, reply_ctx: *mut c_void);
/// The plugin no longer uses the table (called once); the host frees it.
pub type ReleaseFn = unsafe extern "C" fn(ctx: *const c_void);
/// A log event of the plugin, for the gateway's log. Needs no context (the plugin may keep
/// it for the life of the process). `level`: [`LOG_ERROR`]..[`LOG_TRACE`]; `module`: the
/// event's target (its Rust module path, which starts with the crate name).
pub type LogFn = unsafe extern "C" fn(level: u32, module: StrRef, message: StrRef);

/// The services the host offers an agent instance: the host's data store and secrets, so
/// the host's policies (confined paths, S3 routing, secret references) apply to the plugin.
/// Every function may be called from any thread; the plugin refuses a table with a null
/// function.
#[repr(C)]
#[derive(Debug)]
pub struct HostVTable {
    /// The host's context, passed back as the first argument of every function.
    pub ctx: *const c_void,
    /// Reply: the object's bytes.
    pub data_read: Option<DataFn>,
    /// Reply: empty.
    pub data_write: Option<DataWriteFn>,
    /// Reply: one byte, 1 = exists.
    pub data_exists: Option<DataFn>,
    /// Reply: [`StringList`](crate::plugin::wire::StringList).
    pub data_list: Option<DataFn>,
    /// By key. Reply: the secret's UTF-8 value.
    pub secret_get: Option<SecretFn>,
    /// A reference (`env:NAME`, `file:PATH`). Reply: the value.
    pub secret_resolve: Option<SecretFn>,
    pub release: Option<ReleaseFn>,
    pub log: Option<LogFn>,
}

/// Log levels of [`HostVTable::log`].
pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;
pub const LOG_TRACE: u32 = 5;
