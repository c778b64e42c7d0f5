//! Compiles Tern's own flyteidl-compatible `.proto` files with protox (no system protoc)
//! and tonic-prost-build. The encoded descriptor set is kept for gRPC reflection and
//! for the wire-compatibility test against the real flyteidl package.
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "flyteidl/core/literals.proto",
    "flyteidl/core/types.proto",
    "flyteidl/core/interface.proto",
    "flyteidl/core/tasks.proto",
    "flyteidl/core/identifier.proto",
    "flyteidl/core/execution.proto",
    "flyteidl/core/security.proto",
    "flyteidl/core/metrics.proto",
    "flyteidl/core/workflow.proto",
    "flyteidl/core/artifact_id.proto",
    "flyteidl/admin/agent.proto",
    "flyteidl/service/agent.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["proto"])?;
    let encoded = prost::Message::encode_to_vec(&fds);
    std::fs::write(out_dir.join("flyteidl_descriptor.bin"), encoded)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_well_known_types(false)
        // Sorted maps: deterministic bytes (as flytekit's `SerializeToString(deterministic=True)`)
        // and stable hashes of templates and literals.
        .btree_map(".")
        // Malformed request bytes are the caller's fault: answer INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::StrictProstCodec")
        // The template (~1.2 KB) and execution metadata (~1 KB) are heap-allocated, so a
        // request is small and moving it through the layers of a call (and into the
        // futures that hold it) copies pointers, not kilobytes (docs/benchmarks.md).
        .boxed(".flyteidl.admin.CreateTaskRequest.template")
        .boxed(".flyteidl.admin.CreateTaskRequest.task_execution_metadata")
        .boxed(".flyteidl.admin.CreateRequestHeader.template")
        .boxed(".flyteidl.admin.CreateRequestHeader.task_execution_metadata")
        .compile_fds(fds)?;
    Ok(())
}
