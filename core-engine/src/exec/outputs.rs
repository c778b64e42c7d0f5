//! A succeeded task's outputs: read, checked against the interface, written down.
use bytes::Bytes;
use prost::Message;
use tern_agent_api::core;
use tern_agent_api::error::AgentError;
use tern_agent_api::outputs::check_outputs;
use tern_agent_api::status::TaskStatus;

use super::attempt::{NodeCtx, Stop};

/// Outputs from the Resource, or (when it carries none and the interface declares some)
/// from `<prefix>/outputs.pb`, as propeller reads them; checked against the interface
/// and written to `outputs.pb` when too large to be kept inline (unless the agent wrote it).
pub(crate) async fn collect_outputs(
    cx: &NodeCtx,
    status: TaskStatus,
    outputs_uri: &str,
) -> Result<core::LiteralMap, Stop> {
    let data = &cx.run.data;
    let interface = cx.node.template.interface.as_ref();
    let declares = interface.and_then(|i| i.outputs.as_ref()).is_some_and(|o| !o.variables.is_empty());
    let (outputs, on_disk) = match status.outputs {
        Some(o) if !o.literals.is_empty() || !declares => (o, false),
        _ if declares => {
            let bytes = data.read(outputs_uri).await.map_err(|e| {
                AgentError::internal(
                    tern_agent_api::error::codes::OUTPUT_MISMATCH,
                    format!("the task succeeded without outputs in its Resource and {outputs_uri} cannot be read: {e}"),
                )
            })?;
            let map = core::LiteralMap::decode(bytes).map_err(|e| {
                AgentError::internal(
                    tern_agent_api::error::codes::OUTPUT_MISMATCH,
                    format!("{outputs_uri} is not a LiteralMap: {e}"),
                )
            })?;
            (map, true)
        }
        _ => (core::LiteralMap::default(), false),
    };
    check_outputs(interface, &outputs)?;
    // Small outputs live inline in the attempt's row; large ones in outputs.pb.
    if !on_disk && outputs.encoded_len() > super::attempt::INLINE_OUTPUTS_MAX && !data.exists(outputs_uri).await? {
        data.write(outputs_uri, Bytes::from(outputs.encode_to_vec())).await?;
    }
    Ok(outputs)
}
