//! The task's data under its output prefix, through the gateway's data store (`s3://`
//! prefixes go through aws-sdk-s3: `[data_store]`'s S3 settings).
//!
//! flytekitplugins-awsbatch's container runs `pyflyte-execute --inputs <input>
//! --output-prefix <output_prefix>/0 …`: it reads `inputs.pb` and writes `outputs.pb` under
//! `<output_prefix>/0` (propeller's AWS Batch plugin reads outputs there). Before submitting,
//! the agent makes sure the inputs are where the container reads them (propeller and `tern
//! run` have written them already; a bare CreateTask caller may not have); once the job
//! succeeded it reads the outputs and returns them in `Resource.outputs`, checked against
//! the interface.
use prost::Message;
use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::prelude::*;

use crate::codes;

/// Writes `inputs` to `uri` unless something is there already. Never fails the create: when
/// the gateway's store cannot check or write `uri` (another scheme, outside its roots, no S3
/// access from this gateway), the inputs are the writer's business (propeller and `tern run`
/// wrote them before CreateTask), and a container that finds none fails visibly.
pub async fn ensure_inputs(ctx: &TaskContext, uri: &str, inputs: &core::LiteralMap) {
    match ctx.data_store().exists(uri).await {
        Ok(true) => return,
        Ok(false) => {}
        Err(e @ (DataStoreError::UnsupportedUri { .. } | DataStoreError::OutsideRoots { .. })) => {
            tracing::debug!(%uri, error = %e, "inputs not checked: this gateway's data store does not reach them");
            return;
        }
        Err(e) => {
            tracing::warn!(%uri, error = %e, "cannot check the task's inputs from this gateway; submitting as is");
            return;
        }
    }
    match ctx.data_store().write(uri, inputs.encode_to_vec().into()).await {
        Ok(()) => tracing::debug!(%uri, "task inputs written for the container"),
        Err(e) => tracing::warn!(%uri, error = %e, "cannot write the task's inputs from this gateway; submitting as is"),
    }
}

/// The places outputs may be, in order: `<prefix>/outputs.pb`, then `<prefix>/0/outputs.pb`.
pub fn output_uris(prefix: &str) -> [String; 2] {
    [join_uri(prefix, "outputs.pb"), join_uri(&join_uri(prefix, "0"), "outputs.pb")]
}

/// The outputs of a succeeded job: `Ok(None)` when the store cannot reach the prefix (then
/// whoever reads `outputs.pb` finds them), an error when they are missing or unreadable.
/// With an `interface`, they are checked against it (the handle does not carry one: the
/// gateway checks outputs against the template's interface before they leave it).
pub async fn read_outputs(ctx: &TaskContext, interface: Option<&core::TypedInterface>) -> Result<Option<core::LiteralMap>, AgentError> {
    let prefix = ctx.output_prefix.trim();
    if prefix.is_empty() {
        return Ok(None);
    }
    for uri in output_uris(prefix) {
        match ctx.data_store().read(&uri).await {
            Ok(bytes) => {
                let outputs = core::LiteralMap::decode(bytes.as_ref()).map_err(|e| {
                    codes::outputs_missing(format!("{uri} is not a flyteidl LiteralMap ({e}): not written by flytekit's entrypoint?"))
                })?;
                if interface.is_some() {
                    check_outputs(interface, &outputs)?;
                }
                return Ok(Some(outputs));
            }
            Err(DataStoreError::NotFound { .. }) => continue,
            Err(e @ (DataStoreError::UnsupportedUri { .. } | DataStoreError::OutsideRoots { .. })) => {
                tracing::debug!(%uri, error = %e, "cannot read the task's outputs from this gateway");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let [a, b] = output_uris(prefix);
    Err(codes::outputs_missing(format!(
        "the AWS Batch job succeeded but wrote neither {a} nor {b}: the interface declares outputs, which flytekit's \
         entrypoint (pyflyte-execute --output-prefix in the container args) writes there"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_places() {
        assert_eq!(output_uris("s3://b/p/"), ["s3://b/p/outputs.pb".to_owned(), "s3://b/p/0/outputs.pb".to_owned()]);
    }
}
