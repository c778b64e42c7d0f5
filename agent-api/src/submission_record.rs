//! A submission record: the handle an agent wrote, after its backend accepted a job, into
//! the attempt's output prefix (the gateway's data store), so a repeated `CreateTask` of the
//! same attempt — after a gateway restart, from another replica — finds the job instead of
//! submitting a second one. For backends that take no client-chosen job id or token
//! (Snowflake's REST API, Spark's standalone REST submission API).
//!
//! The record lives at `<output_prefix>/<file>`; each attempt has its own output prefix
//! (propeller's `…/<node>/<attempt>`), so a retry attempt never finds the previous one's job.
//! What it cannot close: a crash (or a lost write) between the backend accepting the job and
//! the record being written. Agents document that window.
use crate::context::TaskContext;
use crate::datastore::join_uri;
use crate::resource_meta::ResourceMeta;

/// Where one attempt's record of an agent lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRecord {
    uri: String,
}

impl SubmissionRecord {
    /// The record named `file` in the attempt's output prefix; `None` when the call has no
    /// output prefix or no idempotency key (nothing to key a record on).
    pub fn for_attempt(ctx: &TaskContext, file: &str) -> Option<Self> {
        if ctx.output_prefix.trim().is_empty() || ctx.idempotency_key.is_none() {
            return None;
        }
        Some(Self { uri: join_uri(&ctx.output_prefix, file) })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The handle recorded by an earlier create, if any. A record that cannot be read is
    /// logged and treated as absent (the caller then submits).
    pub async fn read(&self, ctx: &TaskContext) -> Option<ResourceMeta> {
        let store = ctx.data_store();
        match store.exists(&self.uri).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(uri = %self.uri, error = %e, "cannot look for the submission record");
                return None;
            }
        }
        match store.read(&self.uri).await {
            Ok(bytes) if !bytes.is_empty() => Some(ResourceMeta::from_bytes(bytes.to_vec())),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(uri = %self.uri, error = %e, "cannot read the submission record");
                None
            }
        }
    }

    /// Empties the record, so a repeated create submits again: for a job that was recorded
    /// before it started and then refused (no slot). A failed write is logged.
    pub async fn clear(&self, ctx: &TaskContext) {
        if let Err(e) = ctx.data_store().write(&self.uri, Vec::new().into()).await {
            tracing::warn!(uri = %self.uri, error = %e, "cannot clear the submission record; a repeated create will report the job lost");
        }
    }

    /// Records `meta`. A failed write is logged, not returned: the job runs either way, only a
    /// repeated create after a restart would no longer find it.
    pub async fn write(&self, ctx: &TaskContext, meta: &ResourceMeta) {
        if let Err(e) = ctx.data_store().write(&self.uri, meta.as_bytes().to_vec().into()).await {
            tracing::warn!(uri = %self.uri, error = %e, "cannot write the submission record; a repeated create after a restart would submit again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::AgentServices;
    use crate::proto::flyteidl::{admin, core};

    fn ctx(services: &AgentServices, prefix: &str, attempt: u32) -> TaskContext {
        let id = core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "t".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier { node_id: "n0".into(), execution_id: None }),
            retry_attempt: attempt,
        };
        let meta = admin::TaskExecutionMetadata { task_execution_id: Some(id), ..Default::default() };
        services.task_context(prefix, Some(Box::new(meta)), None)
    }

    #[tokio::test]
    async fn a_record_is_found_by_the_same_attempt_only() {
        let dir = tempfile::tempdir().unwrap();
        let services = AgentServices::local(dir.path());
        let first = ctx(&services, "run/n0/0", 0);
        let record = SubmissionRecord::for_attempt(&first, "job.json").unwrap();
        assert_eq!(record.uri(), "run/n0/0/job.json");
        assert!(record.read(&first).await.is_none());
        record.write(&first, &ResourceMeta::from_bytes(b"{\"id\":1}".to_vec())).await;
        record.clear(&first).await;
        assert!(record.read(&first).await.is_none(), "a cleared record is absent");
        record.write(&first, &ResourceMeta::from_bytes(b"{\"id\":1}".to_vec())).await;
        let again = SubmissionRecord::for_attempt(&ctx(&services, "run/n0/0", 0), "job.json").unwrap();
        assert_eq!(again.read(&first).await.unwrap().as_bytes(), b"{\"id\":1}");
        let retry = ctx(&services, "run/n0/1", 1);
        assert!(SubmissionRecord::for_attempt(&retry, "job.json").unwrap().read(&retry).await.is_none());
        assert!(SubmissionRecord::for_attempt(&services.task_context("", None, None), "job.json").is_none());
        assert!(SubmissionRecord::for_attempt(&services.task_context("run/x", None, None), "job.json").is_none());
    }
}
