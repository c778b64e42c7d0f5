//! Plugin side: the host's data store and secrets, reached through the host's
//! [`HostVTable`], behind the ordinary [`DataStore`] and [`SecretProvider`] traits, so an
//! agent's code uses `ctx.data_store()` and `ctx.secrets()` unchanged.
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;

use super::abi::{DataFn, DataWriteFn, HostVTable, LogFn, ReleaseFn, ReplyFn, SecretFn, StrRef};
use super::reply::{self, Slot};
use super::wire::{plugin_codes, StringList, WireError};
use crate::datastore::{DataStore, DataStoreError};
use crate::error::AgentError;
use crate::secrets::{Secret, SecretProvider, SecretRef};

const HOST: &str = "the host";

/// The host's functions, checked non-null once.
#[derive(Clone, Copy)]
struct HostFns {
    ctx: *const c_void,
    data_read: DataFn,
    data_write: DataWriteFn,
    data_exists: DataFn,
    data_list: DataFn,
    secret_get: SecretFn,
    secret_resolve: SecretFn,
    release: ReleaseFn,
    log: Option<LogFn>,
}

/// Owns the host's table: releases it (once) when the last user is gone.
pub(crate) struct HostLink {
    fns: HostFns,
}

// SAFETY: the ABI requires every host function to be callable from any thread, and the
// table stays valid until `release`, which only `Drop` calls.
unsafe impl Send for HostLink {}
// SAFETY: as above; `&HostLink` only calls the host's functions.
unsafe impl Sync for HostLink {}

impl std::fmt::Debug for HostLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostLink")
    }
}

impl HostLink {
    /// The link, or what is wrong with the table (then it is released if it can be).
    ///
    /// # Safety
    /// `table` must be null or the host's table passed to `init`, valid until `release` is
    /// called, and owned by this link from now on.
    pub(crate) unsafe fn new(table: *const HostVTable) -> Result<Arc<Self>, String> {
        if table.is_null() {
            return Err("the host passed no services".into());
        }
        // SAFETY: non-null and valid, per the caller.
        let t = unsafe { &*table };
        let missing = |what: &str| {
            if let Some(release) = t.release {
                // SAFETY: the table is not used after this.
                unsafe { release(t.ctx) };
            }
            format!("the host's services lack {what}")
        };
        let fns = HostFns {
            ctx: t.ctx,
            data_read: t.data_read.ok_or_else(|| missing("data_read"))?,
            data_write: t.data_write.ok_or_else(|| missing("data_write"))?,
            data_exists: t.data_exists.ok_or_else(|| missing("data_exists"))?,
            data_list: t.data_list.ok_or_else(|| missing("data_list"))?,
            secret_get: t.secret_get.ok_or_else(|| missing("secret_get"))?,
            secret_resolve: t.secret_resolve.ok_or_else(|| missing("secret_resolve"))?,
            release: t.release.ok_or_else(|| missing("release"))?,
            log: t.log,
        };
        Ok(Arc::new(Self { fns }))
    }

    /// The host's log function (needs no context).
    pub(crate) fn log(&self) -> Option<LogFn> {
        self.fns.log
    }

    /// Calls a host function whose reply comes later, and awaits it.
    async fn later(&self, start: impl FnOnce(&HostFns, ReplyFn, *mut c_void)) -> Result<Vec<u8>, WireError> {
        let rx = {
            let (reply, ctx, rx) = reply::channel();
            start(&self.fns, reply, ctx);
            rx
        };
        reply::into_wire_result(rx.await, HOST)
    }

    /// Calls a host function that answers before it returns.
    fn now(&self, start: impl FnOnce(&HostFns, ReplyFn, *mut c_void)) -> Result<Vec<u8>, AgentError> {
        let mut slot = Slot::default();
        start(&self.fns, reply::sync_reply, slot.as_ctx());
        slot.into_result(HOST)
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        // SAFETY: called once, as the last use of the table.
        unsafe { (self.fns.release)(self.fns.ctx) };
    }
}

/// The host's data store.
#[derive(Debug, Clone)]
pub struct HostDataStore(pub(crate) Arc<HostLink>);

#[async_trait]
impl DataStore for HostDataStore {
    async fn read(&self, uri: &str) -> Result<Bytes, DataStoreError> {
        self.0
            .later(|t, reply, ctx| {
                // SAFETY: the host's function with its own context; `uri` is borrowed for the call.
                unsafe { (t.data_read)(t.ctx, StrRef::new(uri), reply, ctx) }
            })
            .await
            .map(Bytes::from)
            .map_err(|w| w.into_data(uri))
    }

    async fn write(&self, uri: &str, data: Bytes) -> Result<(), DataStoreError> {
        self.0
            .later(|t, reply, ctx| {
                // SAFETY: as above; the host copies `data` before returning.
                unsafe { (t.data_write)(t.ctx, StrRef::new(uri), data.as_ptr(), data.len(), reply, ctx) }
            })
            .await
            .map(|_| ())
            .map_err(|w| w.into_data(uri))
    }

    async fn exists(&self, uri: &str) -> Result<bool, DataStoreError> {
        let answer = self
            .0
            .later(|t, reply, ctx| {
                // SAFETY: as above.
                unsafe { (t.data_exists)(t.ctx, StrRef::new(uri), reply, ctx) }
            })
            .await
            .map_err(|w| w.into_data(uri))?;
        Ok(answer.first() == Some(&1))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, DataStoreError> {
        let answer = self
            .0
            .later(|t, reply, ctx| {
                // SAFETY: as above.
                unsafe { (t.data_list)(t.ctx, StrRef::new(prefix), reply, ctx) }
            })
            .await
            .map_err(|w| w.into_data(prefix))?;
        StringList::decode(answer.as_slice()).map(|l| l.items).map_err(|e| DataStoreError::Io {
            uri: prefix.to_owned(),
            source: std::io::Error::other(format!("[{}] the host's listing cannot be decoded: {e}", plugin_codes::PROTOCOL)),
        })
    }

    fn local_path(&self, uri: &str) -> Result<PathBuf, DataStoreError> {
        Err(DataStoreError::UnsupportedUri {
            uri: uri.to_owned(),
            handles: "objects through the gateway, not local paths (a plugin has no direct file access)",
        })
    }
}

/// The host's secrets.
#[derive(Debug, Clone)]
pub struct HostSecrets(pub(crate) Arc<HostLink>);

fn secret(bytes: Vec<u8>) -> Result<Secret, AgentError> {
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| AgentError::internal(plugin_codes::PROTOCOL, "the host answered a secret that is not UTF-8"))
}

impl SecretProvider for HostSecrets {
    fn get(&self, key: &str) -> Result<Secret, AgentError> {
        secret(self.0.now(|t, reply, ctx| {
            // SAFETY: the host answers before returning, while `key` and the slot are alive.
            unsafe { (t.secret_get)(t.ctx, StrRef::new(key), reply, ctx) }
        })?)
    }

    fn resolve(&self, reference: &SecretRef) -> Result<Secret, AgentError> {
        let text = reference.reference();
        secret(self.0.now(|t, reply, ctx| {
            // SAFETY: as above.
            unsafe { (t.secret_resolve)(t.ctx, StrRef::new(&text), reply, ctx) }
        })?)
    }
}
