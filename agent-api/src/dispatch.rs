//! [`InProcessClient`]: dispatches protocol requests to a registry's agents directly.
//! The gRPC server adapter is a thin layer over it, so the embedded engine and remote
//! callers go through exactly the same validation and error mapping.
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use prost::Message;

use crate::agent::{AsyncAgent, MetricsQuery, SyncAgent, TaskRequest};
use crate::category::TaskCategory;
use crate::client::AgentClient;
use crate::context::{AgentServices, TaskContext};
use crate::error::{codes, AgentError};
use crate::datastore::{join_uri, DataStoreError};
use crate::job_outputs;
use crate::outputs::check_outputs;
use crate::proto::flyteidl::{admin, core};
use crate::registry::{AgentHandle, AgentRegistry};
use crate::resource_meta::ResourceMeta;
use crate::status::{Phase, TaskStatus};

#[derive(Clone)]
pub struct InProcessClient {
    registry: Arc<AgentRegistry>,
    services: AgentServices,
}

/// Runs an agent call, turning a panic inside the agent into a system error instead of
/// tearing down the caller.
async fn guarded<T>(op: &str, fut: impl Future<Output = Result<T, AgentError>>) -> Result<T, AgentError> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => Err(crate::panic::panic_error("agent", op, panic.as_ref())),
    }
}

fn required<T>(field: Option<T>, name: &str) -> Result<T, AgentError> {
    field.ok_or_else(|| AgentError::invalid_argument(codes::INVALID_REQUEST, format!("{name} is required")))
}

fn category_of(template: &core::TaskTemplate) -> Result<TaskCategory, AgentError> {
    if template.r#type.is_empty() {
        return Err(AgentError::invalid_argument(codes::INVALID_REQUEST, "TaskTemplate.type is empty"));
    }
    Ok(TaskCategory::new(template.r#type.clone(), template.task_type_version))
}

fn requested_category(category: Option<&admin::TaskCategory>, task_type: &str) -> Result<TaskCategory, AgentError> {
    let c = TaskCategory::from_request(category, task_type);
    if c.name.is_empty() {
        return Err(AgentError::invalid_argument(
            codes::INVALID_REQUEST,
            "task_category.name (or task_type) is required",
        ));
    }
    Ok(c)
}

impl InProcessClient {
    pub fn new(registry: Arc<AgentRegistry>, services: AgentServices) -> Self {
        Self { registry, services }
    }

    pub fn registry(&self) -> &AgentRegistry {
        &self.registry
    }

    pub fn services(&self) -> &AgentServices {
        &self.services
    }

    fn async_agent(&self, category: &TaskCategory) -> Result<Arc<dyn AsyncAgent>, AgentError> {
        match self.registry.lookup(category)? {
            AgentHandle::Async(a) => Ok(a.clone()),
            AgentHandle::Sync(a) => Err(AgentError::invalid_argument(
                codes::WRONG_EXECUTION_MODE,
                format!("agent {:?} for {category} is synchronous: call ExecuteTaskSync, not the async API", a.name()),
            )),
        }
    }

    fn sync_agent(&self, category: &TaskCategory) -> Result<Arc<dyn SyncAgent>, AgentError> {
        match self.registry.lookup(category)? {
            AgentHandle::Sync(a) => Ok(a.clone()),
            AgentHandle::Async(a) => Err(AgentError::invalid_argument(
                codes::WRONG_EXECUTION_MODE,
                format!(
                    "agent {:?} for {category} is asynchronous: call CreateTask/GetTask, not ExecuteTaskSync",
                    a.name()
                ),
            )),
        }
    }

    /// The agent's context. Its deadline is the earlier of the served call's (`grpc-timeout`)
    /// and, for calls that carry the task's template (create, execute), now + the task's
    /// `metadata.timeout`: a call never outlives the task it runs.
    fn ctx(
        &self,
        output_prefix: &str,
        execution: Option<Box<admin::TaskExecutionMetadata>>,
        template: Option<&core::TaskTemplate>,
    ) -> TaskContext {
        let call = crate::call::CallContext::current_deadline();
        let task = template.and_then(task_timeout).map(|t| Instant::now() + t);
        let deadline = match (call, task) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.services.task_context(output_prefix, execution, deadline)
    }
}

impl InProcessClient {
    /// A succeeded job's outputs against the outputs its task declared (kept in its handle):
    /// the Resource's, else `<output_prefix>/outputs.pb`, which is what propeller reads then.
    async fn checked(&self, ctx: &TaskContext, status: TaskStatus, declared: core::VariableMap) -> TaskStatus {
        let interface = core::TypedInterface { inputs: None, outputs: Some(declared) };
        let outputs = match &status.outputs {
            Some(o) => o.clone(),
            None if ctx.output_prefix.is_empty() => return status,
            None => {
                let uri = join_uri(&ctx.output_prefix, "outputs.pb");
                let mismatch = |m: String| TaskStatus::failed(AgentError::internal(codes::OUTPUT_MISMATCH, m));
                match ctx.data_store().read(&uri).await {
                    Ok(bytes) => match core::LiteralMap::decode(bytes) {
                        Ok(map) => map,
                        Err(e) => return mismatch(format!("{uri} is not a LiteralMap: {e}")),
                    },
                    Err(DataStoreError::NotFound { .. }) => {
                        return mismatch(format!(
                            "the task declares outputs but succeeded without them: none in its Resource and no {uri}"
                        ))
                    }
                    // A store this gateway cannot read (another scheme, outside its roots):
                    // the caller reads and checks the file itself.
                    Err(e) => {
                        tracing::debug!(error = %e, "outputs.pb not checked");
                        return status;
                    }
                }
            }
        };
        match check_outputs(Some(&interface), &outputs) {
            Ok(()) => status,
            Err(e) => TaskStatus::failed(e),
        }
    }
}

/// The template's `metadata.timeout`, when it sets one (zero, negative or malformed: none, as in Flyte).
fn task_timeout(template: &core::TaskTemplate) -> Option<Duration> {
    let t = template.metadata.as_ref()?.timeout.as_ref()?;
    let d = Duration::try_from(*t).ok()?;
    (!d.is_zero()).then_some(d)
}

#[async_trait]
impl AgentClient for InProcessClient {
    fn describe(&self) -> String {
        "in-process".into()
    }

    async fn list_agents(&self) -> Result<Vec<admin::Agent>, AgentError> {
        Ok(self.registry.agents())
    }

    async fn get_agent(&self, name: &str) -> Result<admin::Agent, AgentError> {
        self.registry.agent(name)
    }

    async fn create_task(&self, request: admin::CreateTaskRequest) -> Result<Vec<u8>, AgentError> {
        let template = required(request.template, "CreateTaskRequest.template")?;
        let category = category_of(&template)?;
        let agent = self.async_agent(&category)?;
        let ctx = self.ctx(&request.output_prefix, request.task_execution_metadata, Some(&template));
        let outputs = template.interface.as_ref().and_then(|i| i.outputs.clone());
        let task = TaskRequest { template, inputs: request.inputs.unwrap_or_default() };
        let meta = guarded("create", agent.create(&ctx, task)).await?;
        Ok(job_outputs::seal(meta.into_bytes(), outputs.as_ref()))
    }

    async fn get_task(&self, request: admin::GetTaskRequest) -> Result<admin::Resource, AgentError> {
        #[allow(deprecated)]
        let category = requested_category(request.task_category.as_ref(), &request.task_type)?;
        let agent = self.async_agent(&category)?;
        let ctx = self.ctx(&request.output_prefix, None, None);
        let (meta, declared) = job_outputs::open(request.resource_meta)?;
        let status = guarded("get", agent.get(&ctx, &ResourceMeta::from_bytes(meta))).await?;
        let status = match declared {
            Some(outputs) if status.phase == Phase::Succeeded => self.checked(&ctx, status, outputs).await,
            _ => status,
        };
        Ok(status.into_resource())
    }

    async fn delete_task(&self, request: admin::DeleteTaskRequest) -> Result<(), AgentError> {
        #[allow(deprecated)]
        let category = requested_category(request.task_category.as_ref(), &request.task_type)?;
        let agent = self.async_agent(&category)?;
        let ctx = self.ctx("", None, None);
        let meta = ResourceMeta::from_bytes(job_outputs::open(request.resource_meta)?.0);
        guarded("delete", agent.delete(&ctx, &meta)).await
    }

    async fn execute_task_sync(
        &self,
        header: admin::CreateRequestHeader,
        inputs: core::LiteralMap,
    ) -> Result<admin::Resource, AgentError> {
        let template = required(header.template, "CreateRequestHeader.template")?;
        let category = category_of(&template)?;
        let agent = self.sync_agent(&category)?;
        let ctx = self.ctx(&header.output_prefix, header.task_execution_metadata, Some(&template));
        let interface = template.interface.clone();
        let task = TaskRequest { template, inputs };
        let mut status = guarded("execute", agent.execute(&ctx, task)).await?;
        if status.phase == Phase::Succeeded {
            let outputs = status.outputs.clone().unwrap_or_default();
            if let Err(e) = check_outputs(interface.as_ref(), &outputs) {
                status = TaskStatus::failed(e);
            }
        } else if !status.is_terminal() {
            // The sync contract requires a terminal phase; propeller would mis-handle any other.
            status = TaskStatus::failed(AgentError::internal(
                codes::WRONG_EXECUTION_MODE,
                format!("sync agent {:?} returned non-terminal phase {}", agent.name(), status.phase.as_str_name()),
            ));
        }
        Ok(status.into_resource())
    }

    async fn get_task_metrics(
        &self,
        request: admin::GetTaskMetricsRequest,
    ) -> Result<admin::GetTaskMetricsResponse, AgentError> {
        #[allow(deprecated)]
        let category = requested_category(request.task_category.as_ref(), &request.task_type)?;
        let agent = self.async_agent(&category)?;
        let ctx = self.ctx("", None, None);
        let meta = ResourceMeta::from_bytes(job_outputs::open(request.resource_meta)?.0);
        let query = MetricsQuery {
            queries: request.queries,
            start_time: request.start_time,
            end_time: request.end_time,
            step: request.step,
        };
        let results = guarded("metrics", agent.metrics(&ctx, &meta, query)).await?;
        Ok(admin::GetTaskMetricsResponse { results })
    }

    async fn get_task_logs(
        &self,
        request: admin::GetTaskLogsRequest,
    ) -> Result<Vec<admin::GetTaskLogsResponse>, AgentError> {
        #[allow(deprecated)]
        let category = requested_category(request.task_category.as_ref(), &request.task_type)?;
        let agent = self.async_agent(&category)?;
        let ctx = self.ctx("", None, None);
        let meta = ResourceMeta::from_bytes(job_outputs::open(request.resource_meta)?.0);
        let page = guarded("logs", agent.logs(&ctx, &meta, request.lines, &request.token)).await?;
        use admin::get_task_logs_response::Part;
        #[allow(deprecated)]
        let body = admin::GetTaskLogsResponseBody {
            results: page.lines.iter().map(|l| l.message.clone()).collect(),
            structured_lines: page.lines,
        };
        Ok(vec![
            admin::GetTaskLogsResponse {
                part: Some(Part::Header(admin::GetTaskLogsResponseHeader { token: page.next_token })),
            },
            admin::GetTaskLogsResponse { part: Some(Part::Body(body)) },
        ])
    }
}
