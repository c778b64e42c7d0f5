//! The services the gateway offers a plugin instance through the ABI's [`HostVTable`]: its
//! data store (read, write, exists, list; answered later, from the gateway's runtime) and
//! its secrets (answered at once). The plugin gets no store of its own, so the gateway's
//! confinement, S3 routing and secret references apply to what it does through
//! `TaskContext`.
use std::ffi::c_void;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use prost::Message;
use tern_agent_api::context::AgentServices;
use tern_agent_api::datastore::DataStore;
use tern_agent_api::error::{codes, AgentError};
use tern_agent_api::plugin::abi::{HostVTable, ReplyFn, StrRef, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN};
use tern_agent_api::plugin::reply::Replier;
use tern_agent_api::plugin::wire::{panic_message, plugin_codes, StringList, WireError};
use tern_agent_api::secrets::{Secret, SecretRef};
use tokio::runtime::Handle;

struct HostCtx {
    services: AgentServices,
    /// Where data store calls run (the gateway's runtime).
    runtime: Option<Handle>,
    table: *mut HostVTable,
}

/// A fresh table for one plugin instance; the plugin owns it until it calls `release`.
pub fn table(services: AgentServices) -> *const HostVTable {
    let runtime = Handle::try_current().ok().or_else(|| fallback_runtime().map(|r| r.handle().clone()));
    let ctx = Box::into_raw(Box::new(HostCtx { services, runtime, table: std::ptr::null_mut() }));
    let table = Box::into_raw(Box::new(HostVTable {
        ctx: ctx as *const c_void,
        data_read: Some(data_read),
        data_write: Some(data_write),
        data_exists: Some(data_exists),
        data_list: Some(data_list),
        secret_get: Some(secret_get),
        secret_resolve: Some(secret_resolve),
        release: Some(release),
        log: Some(log),
    }));
    // SAFETY: `ctx` was just allocated and is not shared yet.
    unsafe { (*ctx).table = table };
    table
}

/// For gateways built outside a tokio runtime (e.g. `tern config show` does not call
/// agents, but a library user might): a small runtime of its own, made on first need.
fn fallback_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tern-plugin-host")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

fn protocol(message: impl Into<String>) -> AgentError {
    AgentError::internal(plugin_codes::PROTOCOL, message)
}

/// Runs a data store operation on the gateway's runtime and answers `replier` with it.
///
/// # Safety
/// `ctx` must be the context of a table made by [`table`] and not yet released; `uri` must be
/// readable for the duration of this call.
unsafe fn spawn_data<Fut>(
    ctx: *const c_void,
    uri: StrRef,
    replier: Replier,
    op: impl FnOnce(Arc<dyn DataStore>, String) -> Fut,
) where
    Fut: Future<Output = Result<Vec<u8>, WireError>> + Send + 'static,
{
    let mut replier = Some(replier);
    let started = catch_unwind(AssertUnwindSafe(|| -> Result<(), AgentError> {
        // SAFETY: guaranteed by the caller.
        let host = unsafe { &*(ctx as *const HostCtx) };
        // SAFETY: guaranteed by the caller.
        let uri = unsafe { uri.as_str() }.ok_or_else(|| protocol("a data store URI that is not UTF-8"))?.to_owned();
        let runtime = host.runtime.clone().ok_or_else(|| {
            AgentError::internal(codes::INTERNAL, "the gateway has no async runtime for the plugin's data store calls")
        })?;
        let work = op(host.services.data_store.clone(), uri);
        let Some(replier) = replier.take() else { return Ok(()) };
        runtime.spawn(async move {
            match AssertUnwindSafe(work).catch_unwind().await {
                Ok(Ok(payload)) => replier.ok(&payload),
                Ok(Err(e)) => replier.err_wire(&e),
                Err(panic) => replier.err(&AgentError::internal(
                    codes::INTERNAL,
                    format!("the gateway's data store panicked: {}", panic_message(&*panic)),
                )),
            }
        });
        Ok(())
    }));
    let error = match started {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(panic) => AgentError::internal(codes::INTERNAL, format!("the gateway panicked: {}", panic_message(&*panic))),
    };
    if let Some(replier) = replier.take() {
        replier.err(&error);
    }
}

unsafe extern "C" fn data_read(ctx: *const c_void, uri: StrRef, reply: ReplyFn, reply_ctx: *mut c_void) {
    // SAFETY: the plugin's reply pair, answered once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "a data store read") };
    // SAFETY: `ctx` is this table's context (the plugin passes it back) and `uri` is
    // borrowed for this call.
    unsafe {
        spawn_data(ctx, uri, replier, |store, uri| async move {
            store.read(&uri).await.map(|b| b.to_vec()).map_err(|e| WireError::from_data(&e))
        })
    }
}

unsafe extern "C" fn data_write(
    ctx: *const c_void,
    uri: StrRef,
    data: *const u8,
    len: usize,
    reply: ReplyFn,
    reply_ctx: *mut c_void,
) {
    // SAFETY: the plugin's reply pair, answered once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "a data store write") };
    // SAFETY: `data` is readable for this call; it is copied before returning.
    let data = bytes::Bytes::from(unsafe { tern_agent_api::plugin::reply::copy_payload(data, len) });
    // SAFETY: as in `data_read`.
    unsafe {
        spawn_data(ctx, uri, replier, |store, uri| async move {
            store.write(&uri, data).await.map(|()| Vec::new()).map_err(|e| WireError::from_data(&e))
        })
    }
}

unsafe extern "C" fn data_exists(ctx: *const c_void, uri: StrRef, reply: ReplyFn, reply_ctx: *mut c_void) {
    // SAFETY: the plugin's reply pair, answered once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "a data store exists") };
    // SAFETY: as in `data_read`.
    unsafe {
        spawn_data(ctx, uri, replier, |store, uri| async move {
            store.exists(&uri).await.map(|e| vec![u8::from(e)]).map_err(|e| WireError::from_data(&e))
        })
    }
}

unsafe extern "C" fn data_list(ctx: *const c_void, prefix: StrRef, reply: ReplyFn, reply_ctx: *mut c_void) {
    // SAFETY: the plugin's reply pair, answered once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "a data store list") };
    // SAFETY: as in `data_read`.
    unsafe {
        spawn_data(ctx, prefix, replier, |store, prefix| async move {
            store
                .list(&prefix)
                .await
                .map(|items| StringList { items }.encode_to_vec())
                .map_err(|e| WireError::from_data(&e))
        })
    }
}

/// Answers a secret request at once.
///
/// # Safety
/// As [`spawn_data`].
unsafe fn answer_secret(
    ctx: *const c_void,
    text: StrRef,
    replier: Replier,
    lookup: impl FnOnce(&AgentServices, &str) -> Result<Secret, AgentError>,
) {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Secret, AgentError> {
        // SAFETY: guaranteed by the caller.
        let host = unsafe { &*(ctx as *const HostCtx) };
        // SAFETY: guaranteed by the caller.
        let text = unsafe { text.as_str() }.ok_or_else(|| protocol("a secret name that is not UTF-8"))?;
        lookup(&host.services, text)
    }));
    match result {
        Ok(Ok(secret)) => replier.ok(secret.expose().as_bytes()),
        Ok(Err(e)) => replier.err(&e),
        Err(panic) => replier.err(&AgentError::internal(
            codes::INTERNAL,
            format!("the gateway's secret provider panicked: {}", panic_message(&*panic)),
        )),
    }
}

unsafe extern "C" fn secret_get(ctx: *const c_void, key: StrRef, reply: ReplyFn, reply_ctx: *mut c_void) {
    // SAFETY: the plugin's reply pair, answered once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "a secret") };
    // SAFETY: as in `data_read`.
    unsafe { answer_secret(ctx, key, replier, |services, key| services.secrets.get(key)) }
}

unsafe extern "C" fn secret_resolve(ctx: *const c_void, reference: StrRef, reply: ReplyFn, reply_ctx: *mut c_void) {
    // SAFETY: the plugin's reply pair, answered once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "a secret reference") };
    // SAFETY: as in `data_read`.
    unsafe {
        answer_secret(ctx, reference, replier, |services, text| {
            let reference: SecretRef =
                text.parse().map_err(|e: tern_agent_api::secrets::BadSecretRef| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, e.to_string()))?;
            services.secrets.resolve(&reference)
        })
    }
}

unsafe extern "C" fn release(ctx: *const c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() {
            return;
        }
        // SAFETY: the plugin calls `release` once, after its last use of the table; `ctx`
        // and its table were allocated by `table`.
        let host = unsafe { Box::from_raw(ctx as *mut HostCtx) };
        if !host.table.is_null() {
            // SAFETY: allocated by `table`, freed only here.
            drop(unsafe { Box::from_raw(host.table) });
        }
    }));
}

/// A plugin's log event, written to the gateway's log (target `tern_plugin`, with the
/// plugin's module path).
unsafe extern "C" fn log(level: u32, module: StrRef, message: StrRef) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes texts borrowed for the duration of this call.
        let (module, message) = unsafe { (module.as_str(), message.as_str()) };
        let (module, message) = (module.unwrap_or("?"), message.unwrap_or("(not UTF-8)"));
        match level {
            LOG_ERROR => tracing::error!(target: "tern_plugin", module, "{message}"),
            LOG_WARN => tracing::warn!(target: "tern_plugin", module, "{message}"),
            LOG_INFO => tracing::info!(target: "tern_plugin", module, "{message}"),
            LOG_DEBUG => tracing::debug!(target: "tern_plugin", module, "{message}"),
            _ => tracing::trace!(target: "tern_plugin", module, "{message}"),
        }
    }));
}
