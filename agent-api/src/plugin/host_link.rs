//! Plugin side: the host's data store and secrets, reached through the host's
//! [`HostVTable`], behind the ordinary [`DataStore`] and [`SecretProvider`] traits, so an
//! agent's code uses `ctx.data_store()` and `ctx.secrets()` unchanged.
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;

use super::abi::{HostVTable, ReplyFn, StrRef};
use super::reply::{self, Slot};
use super::wire::{plugin_codes, StringList, WireError};
use crate::datastore::{DataStore, DataStoreError};
use crate::error::AgentError;
use crate::secrets::{Secret, SecretProvider, SecretRef};

const HOST: &str = "the host";

/// Owns the host's table: releases it (once) when the last user is gone.
pub(crate) struct HostLink {
    table: *const HostVTable,
}

// SAFETY: the ABI requires every host function to be callable from any thread, and the
// table is immutable until `release`, which only `Drop` calls.
unsafe impl Send for HostLink {}
// SAFETY: as above; `&HostLink` only reads the table.
unsafe impl Sync for HostLink {}

impl std::fmt::Debug for HostLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostLink")
    }
}

impl HostLink {
    /// # Safety
    /// `table` must be the host's table passed to `init`, valid until `release` is called,
    /// and owned by this link from now on.
    pub(crate) unsafe fn new(table: *const HostVTable) -> Option<Arc<Self>> {
        (!table.is_null()).then(|| Arc::new(Self { table }))
    }

    fn table(&self) -> &HostVTable {
        // SAFETY: non-null (checked in `new`) and valid until `release` (in `drop`).
        unsafe { &*self.table }
    }

    /// Calls a host function whose reply comes later, and awaits it.
    async fn later(
        &self,
        start: impl FnOnce(&HostVTable, ReplyFn, *mut c_void),
    ) -> Result<Vec<u8>, WireError> {
        let rx = {
            let (reply, ctx, rx) = reply::channel();
            start(self.table(), reply, ctx);
            rx
        };
        reply::into_wire_result(rx.await, HOST)
    }

    /// Calls a host function that answers before it returns.
    fn now(&self, start: impl FnOnce(&HostVTable, ReplyFn, *mut c_void)) -> Result<Vec<u8>, AgentError> {
        let mut slot = Slot::default();
        start(self.table(), reply::sync_reply, slot.as_ctx());
        slot.into_result(HOST)
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        let table = self.table();
        // SAFETY: called once, as the last use of the table.
        unsafe { (table.release)(table.ctx) };
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
