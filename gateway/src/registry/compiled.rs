//! The agents compiled into this build: adding an agent is its crate, a cargo feature and
//! one line here.
use super::entry::AgentEntry;

/// Every agent whose cargo feature is enabled.
#[allow(clippy::vec_init_then_push)] // each push is feature-gated
pub fn compiled_in() -> Vec<AgentEntry> {
    #[allow(unused_mut)]
    let mut v: Vec<AgentEntry> = Vec::new();
    #[cfg(feature = "agent-echo")]
    v.push(AgentEntry::of::<tern_agent_echo::EchoFactory>());
    #[cfg(feature = "agent-sleep")]
    v.push(AgentEntry::of::<tern_agent_sleep::SleepFactory>());
    #[cfg(feature = "agent-webhook")]
    v.push(AgentEntry::of::<tern_agent_webhook::WebhookFactory>());
    #[cfg(feature = "agent-duckdb")]
    v.push(AgentEntry::of::<tern_agent_duckdb::DuckDbFactory>());
    #[cfg(feature = "agent-snowflake")]
    v.push(AgentEntry::of::<tern_agent_snowflake::SnowflakeFactory>());
    #[cfg(feature = "agent-shell")]
    v.push(AgentEntry::of::<tern_agent_shell::ShellFactory>());
    #[cfg(feature = "agent-bigquery")]
    v.push(AgentEntry::of::<tern_agent_bigquery::BigQueryFactory>());
    #[cfg(feature = "agent-databricks")]
    v.push(AgentEntry::of::<tern_agent_databricks::DatabricksFactory>());
    #[cfg(feature = "agent-batch")]
    v.push(AgentEntry::of::<tern_agent_batch::BatchFactory>());
    #[cfg(feature = "agent-ray")]
    v.push(AgentEntry::of::<tern_agent_ray::RayFactory>());
    #[cfg(feature = "agent-dask")]
    v.push(AgentEntry::of::<tern_agent_dask::DaskFactory>());
    #[cfg(feature = "agent-spark")]
    v.push(AgentEntry::of::<tern_agent_spark::SparkFactory>());
    #[cfg(feature = "agent-lepton")]
    v.push(AgentEntry::of::<tern_agent_lepton::LeptonFactory>());
    #[cfg(feature = "agent-gpu")]
    v.push(AgentEntry::of::<tern_agent_gpu::GpuFactory>());
    v
}
