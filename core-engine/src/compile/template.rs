//! A node's `TaskSpec` → `core::TaskTemplate`, as a flytekit-registered task would look.
use sha2::{Digest, Sha256};
use tern_agent_api::core;
use tern_type_transformers::structs::json_to_struct;

use crate::spec::{InterfaceSpec, NodeSpec, TypeSpec};

/// Project and domain of every Tern task and execution identifier.
pub const PROJECT: &str = "tern";
pub const DOMAIN: &str = "development";

/// `Identifier{TASK, tern, development, <workflow>.<node>, <version>}`.
pub fn task_identifier(workflow: &str, node: &str, version: &str) -> core::Identifier {
    core::Identifier {
        resource_type: core::ResourceType::Task as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: format!("{workflow}.{node}"),
        version: version.into(),
        org: String::new(),
    }
}

fn variables(vars: &std::collections::BTreeMap<String, TypeSpec>) -> core::VariableMap {
    core::VariableMap {
        variables: vars
            .iter()
            .map(|(k, t)| (k.clone(), core::Variable { r#type: Some(t.ty.clone()), ..Default::default() }))
            .collect(),
    }
}

pub fn interface(spec: &InterfaceSpec) -> core::TypedInterface {
    core::TypedInterface { inputs: Some(variables(&spec.inputs)), outputs: Some(variables(&spec.outputs)) }
}

/// Content hash of the task definition. Computed from the spec's canonical JSON (sorted
/// maps), not from the protobuf encoding, whose map order is not stable: the version is
/// part of the idempotency key, so it must never change for the same definition.
fn version_hash(workflow: &str, node: &NodeSpec) -> String {
    let canonical = serde_json::json!({ "workflow": workflow, "node": node.id.as_str(), "task": node.task });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    hex::encode(&digest[..8])
}

pub fn build_template(workflow: &str, node: &NodeSpec) -> core::TaskTemplate {
    let t = &node.task;
    let target = if let Some(sql) = &t.sql {
        Some(core::task_template::Target::Sql(core::Sql {
            statement: sql.clone(),
            dialect: core::sql::Dialect::Ansi as i32,
        }))
    } else {
        t.container.as_ref().map(|c| {
            core::task_template::Target::Container(core::Container {
                image: c.image.clone(),
                command: c.command.clone(),
                args: c.args.clone(),
                env: c.env.iter().map(|(k, v)| core::KeyValuePair { key: k.clone(), value: v.clone() }).collect(),
                resources: c.resources.as_ref().map(resources),
                ..Default::default()
            })
        })
    };
    let metadata = core::TaskMetadata {
        runtime: Some(core::RuntimeMetadata {
            r#type: core::runtime_metadata::RuntimeType::Other as i32,
            version: env!("CARGO_PKG_VERSION").into(),
            flavor: "tern".into(),
        }),
        timeout: t.timeout.as_ref().map(|d| prost_types::Duration {
            seconds: d.duration.as_secs() as i64,
            nanos: d.duration.subsec_nanos() as i32,
        }),
        retries: Some(core::RetryStrategy { retries: t.retries.unwrap_or(0) }),
        interruptible_value: t.interruptible.map(core::task_metadata::InterruptibleValue::Interruptible),
        discoverable: t.cache.is_some(),
        discovery_version: t.cache.as_ref().and_then(|c| c.version.clone()).unwrap_or_default(),
        cache_serializable: t.cache.as_ref().is_some_and(|c| c.serialize),
        cache_ignore_input_vars: t.cache.as_ref().map(|c| c.ignore_inputs.clone()).unwrap_or_default(),
        ..Default::default()
    };
    core::TaskTemplate {
        id: Some(task_identifier(workflow, node.id.as_str(), &version_hash(workflow, node))),
        r#type: t.task_type.clone(),
        metadata: Some(metadata),
        interface: Some(interface(&t.interface)),
        custom: t.custom.as_ref().and_then(|c| c.as_object()).map(json_to_struct),
        task_type_version: t.version,
        config: t.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        target,
        extended_resources: t.accelerator.as_ref().map(|a| core::ExtendedResources {
            gpu_accelerator: Some(core::GpuAccelerator {
                device: a.device.clone(),
                partition_size_value: Some(match &a.partition_size {
                    Some(p) => core::gpu_accelerator::PartitionSizeValue::PartitionSize(p.clone()),
                    None => core::gpu_accelerator::PartitionSizeValue::Unpartitioned(true),
                }),
            }),
            shared_memory: None,
        }),
        ..Default::default()
    }
}

fn resources(spec: &crate::spec::ResourcesSpec) -> core::Resources {
    use crate::spec::ResourceKey;
    use core::resources::ResourceName;
    let entries = |m: &std::collections::BTreeMap<ResourceKey, String>| {
        m.iter()
            .map(|(k, v)| {
                let name = match k {
                    ResourceKey::Cpu => ResourceName::Cpu,
                    ResourceKey::Memory => ResourceName::Memory,
                    ResourceKey::Gpu => ResourceName::Gpu,
                    ResourceKey::Storage => ResourceName::Storage,
                    ResourceKey::EphemeralStorage => ResourceName::EphemeralStorage,
                };
                core::resources::ResourceEntry { name: name as i32, value: v.clone() }
            })
            .collect()
    };
    core::Resources { requests: entries(&spec.requests), limits: entries(&spec.limits) }
}

#[cfg(test)]
mod gpu_tests {
    use super::*;

    #[test]
    fn gpu_resources_and_the_accelerator_reach_the_template_as_flytekit_writes_them() {
        let wf = crate::spec::WorkflowSpec::parse(
            "name: wf\nnodes:\n  - id: train\n    task:\n      type: gpu\n      accelerator: {device: nvidia-tesla-t4}\n      container:\n        args: [python, train.py]\n        resources: {requests: {gpu: \"1\", cpu: \"2\"}, limits: {gpu: \"2\"}}\n",
            "wf.yaml",
        )
        .unwrap();
        let t = build_template("wf", &wf.nodes[0]);
        let Some(core::task_template::Target::Container(c)) = &t.target else { panic!("a container") };
        let r = c.resources.as_ref().unwrap();
        let gpu = core::resources::ResourceName::Gpu as i32;
        assert!(r.requests.iter().any(|e| e.name == gpu && e.value == "1"));
        assert!(r.requests.iter().any(|e| e.name == core::resources::ResourceName::Cpu as i32 && e.value == "2"));
        assert_eq!(r.limits, [core::resources::ResourceEntry { name: gpu, value: "2".into() }]);
        let a = t.extended_resources.unwrap().gpu_accelerator.unwrap();
        assert_eq!(a.device, "nvidia-tesla-t4");
        assert_eq!(a.partition_size_value, Some(core::gpu_accelerator::PartitionSizeValue::Unpartitioned(true)));
        let bad = "name: wf\nnodes:\n  - id: a\n    task:\n      type: gpu\n      container: {args: [x], resources: {requests: {gpus: \"1\"}}}\n";
        assert!(crate::spec::WorkflowSpec::parse(bad, "wf.yaml").is_err(), "an unknown resource name is refused");
    }
}
