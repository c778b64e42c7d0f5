//! What a GPU task asks for, from its `TaskTemplate`, as flytekit writes it:
//!
//! * `extended_resources.gpu_accelerator` — `@task(accelerator=T4)` with
//!   `flytekit.extras.accelerators`: `device` (`nvidia-tesla-t4`) and either `unpartitioned`
//!   or `partition_size` (a MIG profile such as `1g.5gb`);
//! * `container.resources` — `Resources(gpu="2")`: a `GPU` entry in `requests`/`limits`
//!   (the count: the limit, else the request; Kubernetes' `nvidia.com/gpu`).
//!
//! A task with an accelerator but no count asks for one device. A task asking for no GPU at
//! all is refused (it belongs to another agent). The command is `container.command` then
//! `container.args`, already rendered by the engine: a `{{.…}}` left in it is refused.
use serde::{Deserialize, Serialize};
use tern_agent_api::command_result::ContainerCommand;
use tern_agent_api::core;
use tern_agent_api::prelude::AgentError;

use crate::codes::bad_template;
use crate::inventory::{matches_accelerator, GpuDevice};

/// The devices a task asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDemand {
    pub count: u32,
    /// flytekit's accelerator name (`nvidia-tesla-t4`); `None`: any GPU.
    pub accelerator: Option<String>,
    /// A MIG profile (`1g.5gb`); `None`: whole GPUs.
    pub partition: Option<String>,
}

impl GpuDemand {
    /// `2 × nvidia-tesla-t4`, `1 × any GPU`, `1 × nvidia-a100 partition 1g.5gb`.
    pub fn describe(&self) -> String {
        let kind = self.accelerator.as_deref().unwrap_or("any GPU");
        let partition = self.partition.as_ref().map(|p| format!(" partition {p}")).unwrap_or_default();
        format!("{} × {kind}{partition}", self.count)
    }

    /// Whether `device` can serve this demand.
    pub fn fits(&self, device: &GpuDevice) -> bool {
        let kind = self.accelerator.as_deref().is_none_or(|a| matches_accelerator(device, a));
        kind && device.partition == self.partition
    }
}

/// The parts of a GPU task the agent runs.
#[derive(Debug, Clone)]
pub struct GpuTask {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub demand: GpuDemand,
    /// Names of the outputs the interface declares.
    pub outputs: Vec<String>,
}

impl GpuTask {
    pub fn parse(template: &core::TaskTemplate) -> Result<Self, AgentError> {
        let (command, container) = ContainerCommand::parse(template, "gpu", |m: String| bad_template(m))?;
        let demand = demand(template, container)?;
        Ok(Self { program: command.program, args: command.args, env: command.env, demand, outputs: command.outputs })
    }
}

fn gpu_count(entries: &[core::resources::ResourceEntry], what: &str) -> Result<Option<u32>, AgentError> {
    let gpu = core::resources::ResourceName::Gpu as i32;
    let Some(entry) = entries.iter().find(|e| e.name == gpu) else { return Ok(None) };
    let value = entry.value.trim();
    match value.parse::<u32>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(bad_template(format!(
            "container.resources.{what} GPU {:?} is not a whole number of devices (\"1\", \"2\")",
            entry.value
        ))),
    }
}

fn demand(template: &core::TaskTemplate, container: &core::Container) -> Result<GpuDemand, AgentError> {
    let (request, limit) = match &container.resources {
        Some(r) => (gpu_count(&r.requests, "requests")?, gpu_count(&r.limits, "limits")?),
        None => (None, None),
    };
    if let (Some(req), Some(lim)) = (request, limit) {
        if lim < req {
            return Err(bad_template(format!("container.resources: the GPU limit {lim} is below the GPU request {req}")));
        }
    }
    let accelerator = template.extended_resources.as_ref().and_then(|x| x.gpu_accelerator.as_ref());
    let (device, partition) = match accelerator {
        Some(a) => {
            let device = Some(a.device.trim().to_owned()).filter(|d| !d.is_empty());
            let partition = match &a.partition_size_value {
                Some(core::gpu_accelerator::PartitionSizeValue::PartitionSize(p)) if !p.trim().is_empty() => Some(p.trim().to_owned()),
                _ => None,
            };
            (device, partition)
        }
        None => (None, None),
    };
    let count = match limit.or(request) {
        Some(n) => n,
        None if accelerator.is_some() => 1,
        None => {
            return Err(bad_template(
                "the task asks for no GPU: set Resources(gpu=…) (container.resources GPU) or accelerator=… (extended_resources.gpu_accelerator)",
            ))
        }
    };
    if count == 0 {
        return Err(bad_template("the task asks for 0 GPUs: a gpu task needs at least one device"));
    }
    Ok(GpuDemand { count, accelerator: device, partition })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(requests: &[&str], limits: &[&str], accel: Option<core::GpuAccelerator>) -> core::TaskTemplate {
        let entry = |v: &&str| core::resources::ResourceEntry { name: core::resources::ResourceName::Gpu as i32, value: (*v).into() };
        core::TaskTemplate {
            r#type: "gpu".into(),
            target: Some(core::task_template::Target::Container(core::Container {
                args: vec!["python".into(), "-c".into(), "print(1)".into()],
                resources: Some(core::Resources {
                    requests: requests.iter().map(entry).collect(),
                    limits: limits.iter().map(entry).collect(),
                }),
                ..Default::default()
            })),
            extended_resources: accel.map(|a| core::ExtendedResources { gpu_accelerator: Some(a), shared_memory: None }),
            ..Default::default()
        }
    }

    fn accel(device: &str, partition: Option<&str>) -> core::GpuAccelerator {
        core::GpuAccelerator {
            device: device.into(),
            partition_size_value: Some(match partition {
                Some(p) => core::gpu_accelerator::PartitionSizeValue::PartitionSize(p.into()),
                None => core::gpu_accelerator::PartitionSizeValue::Unpartitioned(true),
            }),
        }
    }

    #[test]
    fn the_count_is_the_limit_else_the_request_else_one_for_an_accelerator() {
        let d = |t| GpuTask::parse(&t).unwrap().demand;
        assert_eq!(d(template(&["1"], &["2"], None)), GpuDemand { count: 2, accelerator: None, partition: None });
        assert_eq!(d(template(&["3"], &[], None)).count, 3);
        let t4 = d(template(&[], &[], Some(accel("nvidia-tesla-t4", None))));
        assert_eq!(t4, GpuDemand { count: 1, accelerator: Some("nvidia-tesla-t4".into()), partition: None });
        assert_eq!(t4.describe(), "1 × nvidia-tesla-t4");
        let mig = d(template(&["1"], &[], Some(accel("nvidia-tesla-a100", Some("1g.5gb")))));
        assert_eq!(mig.partition.as_deref(), Some("1g.5gb"));
        assert_eq!(mig.describe(), "1 × nvidia-tesla-a100 partition 1g.5gb");
    }

    #[test]
    fn refuses_templates_without_a_usable_gpu_demand() {
        for (t, needle) in [
            (template(&[], &[], None), "asks for no GPU"),
            (template(&["0"], &[], None), "0 GPUs"),
            (template(&["half"], &[], None), "not a whole number"),
            (template(&["1.5"], &[], None), "not a whole number"),
            (template(&["2"], &["1"], None), "below the GPU request"),
        ] {
            let e = GpuTask::parse(&t).unwrap_err();
            assert_eq!(e.code, crate::codes::BAD_TEMPLATE);
            assert!(e.message.contains(needle), "{}", e.message);
        }
        let mut t = template(&["1"], &[], None);
        if let Some(core::task_template::Target::Container(c)) = t.target.as_mut() {
            c.args.push("--inputs={{.input}}".into());
        }
        assert!(GpuTask::parse(&t).unwrap_err().message.contains("{{.input}}"));
        let no_container = core::TaskTemplate { r#type: "gpu".into(), ..Default::default() };
        assert_eq!(GpuTask::parse(&no_container).unwrap_err().code, crate::codes::BAD_TEMPLATE);
    }

    #[test]
    fn a_demand_fits_devices_of_its_kind_and_partition() {
        let dev = |name: &str, partition: Option<&str>| GpuDevice {
            index: 0,
            uuid: "GPU-0".into(),
            name: name.into(),
            memory_bytes: 0,
            partition: partition.map(Into::into),
        };
        let any = GpuDemand { count: 1, accelerator: None, partition: None };
        assert!(any.fits(&dev("Tesla T4", None)));
        assert!(!any.fits(&dev("NVIDIA A100", Some("1g.5gb"))), "a whole GPU was asked for");
        let t4 = GpuDemand { count: 1, accelerator: Some("nvidia-tesla-t4".into()), partition: None };
        assert!(t4.fits(&dev("Tesla T4", None)));
        assert!(!t4.fits(&dev("NVIDIA A100-SXM4-40GB", None)));
        let mig = GpuDemand { count: 1, accelerator: Some("nvidia-a100".into()), partition: Some("1g.5gb".into()) };
        assert!(mig.fits(&dev("NVIDIA A100-SXM4-40GB", Some("1g.5gb"))));
        assert!(!mig.fits(&dev("NVIDIA A100-SXM4-40GB", Some("2g.10gb"))));
    }
}
