//! [`Router`]: the gateway's [`AgentClient`]. It authorizes each call against the
//! caller's token, picks a target by the first matching `[[routes]]` entry (this gateway's
//! agents, one named agent, or a group of remote endpoints), applies the route's limits,
//! and wraps every handle in an owner-tagged envelope so polls and deletes reach the job's
//! owner from any replica, after any failover or restart.
pub mod config;
pub mod envelope;
pub mod group;
pub mod limits;
pub mod matcher;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::Instrument;
use tern_agent_api::call::CallContext;
use tern_agent_api::category::TaskCategory;
use tern_agent_api::client::AgentClient;
use tern_agent_api::prelude::*;
use tern_agent_api::registry::AgentRegistry;
use tern_agent_api::secrets::SecretProvider;

use self::config::{GroupConfig, RouteConfig};
use self::envelope::{Envelope, Owner, Scope, Sealer};
use self::group::Group;
use self::limits::RouteLimits;
use self::matcher::{Route, Subject, Target};
use crate::error::GatewayError;
use crate::metrics::GatewayMetrics;
use crate::security::Principal;

/// Stable codes of routing outcomes.
pub mod codes {
    /// A route names an agent that does not serve the task's type.
    pub const ROUTE_MISMATCH: &str = "TERN-G013";
    /// The job's owner (an endpoint recorded in its handle) is not configured any more.
    pub const OWNER_GONE: &str = "TERN-G014";
}

pub struct Router {
    local: InProcessClient,
    routes: Vec<Route>,
    groups: BTreeMap<String, Arc<Group>>,
    sealer: Sealer,
    metrics: Arc<GatewayMetrics>,
    health_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Router {
    fn drop(&mut self) {
        for t in &self.health_tasks {
            t.abort();
        }
    }
}

/// The settings a router is built from.
pub struct RouterSettings<'a> {
    pub routes: &'a [RouteConfig],
    pub groups: &'a BTreeMap<String, GroupConfig>,
    /// This gateway's region: the default preference of its groups.
    pub region: Option<&'a str>,
    pub sealer: Sealer,
    pub secrets: &'a dyn SecretProvider,
    /// Start background health checks (not for one-shot commands).
    pub health_checks: bool,
    pub metrics: Arc<GatewayMetrics>,
}

impl Router {
    pub fn new(local: InProcessClient, settings: RouterSettings<'_>) -> Result<Self, GatewayError> {
        let mut groups = BTreeMap::new();
        for (name, config) in settings.groups {
            groups.insert(name.clone(), Arc::new(Group::new(name, config.clone(), settings.region, settings.secrets)?));
        }
        let mut routes = Vec::new();
        for (i, config) in settings.routes.iter().enumerate() {
            let name = config.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let bad = |m: String| GatewayError::Routing(format!("[[routes]] {name}: {m}"));
            let target = Target::parse(&config.target).map_err(bad)?;
            match &target {
                Target::Group(g) if !groups.contains_key(g) => {
                    return Err(bad(format!(
                        "no [groups.{g}]; defined groups: {:?}",
                        groups.keys().collect::<Vec<_>>()
                    )))
                }
                Target::Agent(a) if local.registry().agent(a).is_err() => {
                    let names: Vec<String> = local.registry().agents().into_iter().map(|a| a.name).collect();
                    return Err(bad(format!("this gateway serves no agent {a:?}; it serves {names:?}")));
                }
                _ => {}
            }
            if let Some(r) = &config.rate_limit {
                if !(r.rps.is_finite() && r.rps > 0.0) {
                    return Err(bad(format!("rate_limit.rps must be a positive number, got {}", r.rps)));
                }
            }
            if config.max_concurrency == Some(0) {
                return Err(bad("max_concurrency must be at least 1".into()));
            }
            let limits = RouteLimits::new(&name, config);
            routes.push(Route { name, config: config.clone(), target, limits });
        }
        let health_tasks = if settings.health_checks { groups.values().map(|g| g.spawn_health_checks()).collect() } else { Vec::new() };
        Ok(Self { local, routes, groups, sealer: settings.sealer, metrics: settings.metrics, health_tasks })
    }

    /// Only this gateway's agents, no routes.
    pub fn local_only(local: InProcessClient) -> Self {
        Self {
            local,
            routes: Vec::new(),
            groups: BTreeMap::new(),
            sealer: Sealer::default(),
            metrics: Arc::default(),
            health_tasks: Vec::new(),
        }
    }

    pub fn metrics(&self) -> &Arc<GatewayMetrics> {
        &self.metrics
    }

    pub fn local(&self) -> &InProcessClient {
        &self.local
    }

    pub fn groups(&self) -> &BTreeMap<String, Arc<Group>> {
        &self.groups
    }

    fn route_for(&self, subject: &Subject<'_>) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(subject))
    }

    fn group(&self, name: &str) -> Result<&Arc<Group>, AgentError> {
        self.groups.get(name).ok_or_else(|| {
            AgentError::not_found(codes::OWNER_GONE, format!("group {name:?} is not configured on this gateway"))
        })
    }

    fn registry(&self) -> &AgentRegistry {
        self.local.registry()
    }

    /// The agent a route's `agent:<name>` target names, checked against the category.
    fn check_named_agent(&self, route: &Route, name: &str, category: &TaskCategory) -> Result<(), AgentError> {
        let serving = self.registry().lookup(category).map(|h| h.name().to_owned()).ok();
        if serving.as_deref() == Some(name) {
            return Ok(());
        }
        Err(AgentError::not_found(
            codes::ROUTE_MISMATCH,
            format!("route {} sends {category} to agent {name:?}, which does not serve it", route.name),
        ))
    }

    /// The owner and inner handle of `meta`, after checking the caller may touch it.
    fn open(&self, category: &TaskCategory, meta: Vec<u8>) -> Result<(Owner, Vec<u8>), AgentError> {
        match self.sealer.open(&meta)? {
            Some(Envelope { owner, scope, meta }) => {
                authorize(category, scope.project(), scope.domain())?;
                Ok((owner, meta))
            }
            // A bare handle: made by a local agent outside the router (or before it).
            None => {
                authorize(category, None, None)?;
                Ok((Owner::Local, meta))
            }
        }
    }

    /// The owner of the job a poll (get, delete, metrics, logs) names; `meta` is replaced
    /// by the owner's own handle.
    fn locate(&self, category: Option<&admin::TaskCategory>, task_type: &str, meta: &mut Vec<u8>) -> Result<At<'_>, AgentError> {
        let category = category_of(category, task_type)?;
        let (owner, inner) = self.open(&category, std::mem::take(meta))?;
        *meta = inner;
        self.resolve(&owner)
    }

    /// Where the job's owner is.
    fn resolve(&self, owner: &Owner) -> Result<At<'_>, AgentError> {
        match owner {
            Owner::Local => Ok(At::Local),
            Owner::Remote { group, endpoint, region } => {
                let g = self.group(group)?;
                let ep = g.endpoint(endpoint).ok_or_else(|| {
                    AgentError::not_found(
                        codes::OWNER_GONE,
                        format!(
                            "the job's owner {endpoint} (region {region:?}) is no longer an endpoint of group {group:?}; \
                             it cannot be reached from this gateway"
                        ),
                    )
                })?;
                Ok(At::Remote(g, ep))
            }
        }
    }
}

/// A job's owner, resolved.
enum At<'a> {
    Local,
    Remote(&'a Group, &'a Arc<group::Endpoint>),
}

impl At<'_> {
    /// Records a remote call's outcome for the endpoint's health and names the owner
    /// when it could not be reached.
    fn finish<T>(&self, result: Result<T, AgentError>) -> Result<T, AgentError> {
        let At::Remote(g, ep) = self else { return result };
        g.record(ep, result.as_ref().map(|_| ()));
        result.map_err(|e| {
            if e.code == tern_agent_api::error::codes::TRANSPORT {
                e.context(format!("the job's owner {} (group {:?}, region {:?}) is unreachable", ep.url, g.name, ep.region))
            } else {
                e
            }
        })
    }
}

/// The caller of the call being served, when it authenticated.
fn principal() -> Option<Principal> {
    CallContext::current_extension::<Principal>()
}

fn authorize(category: &TaskCategory, project: Option<&str>, domain: Option<&str>) -> Result<(), AgentError> {
    match principal() {
        Some(p) => p.check(&category.name, project, domain),
        None => Ok(()),
    }
}

fn required_template(template: Option<&core::TaskTemplate>, what: &str) -> Result<TaskCategory, AgentError> {
    let t = template.ok_or_else(|| AgentError::invalid_argument(tern_agent_api::error::codes::INVALID_REQUEST, format!("{what}.template is required")))?;
    if t.r#type.is_empty() {
        return Err(AgentError::invalid_argument(tern_agent_api::error::codes::INVALID_REQUEST, "TaskTemplate.type is empty"));
    }
    Ok(TaskCategory::new(t.r#type.clone(), t.task_type_version))
}

fn category_of(category: Option<&admin::TaskCategory>, task_type: &str) -> Result<TaskCategory, AgentError> {
    let c = TaskCategory::from_request(category, task_type);
    if c.name.is_empty() {
        return Err(AgentError::invalid_argument(
            tern_agent_api::error::codes::INVALID_REQUEST,
            "task_category.name (or task_type) is required",
        ));
    }
    Ok(c)
}

/// Runs `fut` with the route's deadline (shortening the caller's, never extending it).
async fn within<T>(deadline: Option<Duration>, fut: impl std::future::Future<Output = Result<T, AgentError>>) -> Result<T, AgentError> {
    let Some(limit) = deadline else { return fut.await };
    let mut call = CallContext::current().unwrap_or_default();
    let until = Instant::now() + limit;
    call.deadline = Some(call.deadline.map_or(until, |d| d.min(until)));
    match tokio::time::timeout(limit, call.scope(fut)).await {
        Ok(r) => r,
        Err(_) => Err(AgentError::deadline_exceeded(format!("the route's deadline of {} ms passed", limit.as_millis()))),
    }
}

impl Router {
    // The protocol, unmeasured; `AgentClient` below adds metrics and a span per call.

    /// What the routes reach, in route order then this gateway's own agents, one entry
    /// per task category (the first target that may take it); remote agents are marked
    /// `(remote: group <name>)`. A limited token sees only its task types.
    async fn do_list_agents(&self) -> Result<Vec<admin::Agent>, AgentError> {
        let caller = principal();
        let mut seen: Vec<TaskCategory> = Vec::new();
        let mut out = Vec::new();
        let mut add = |mut agent: admin::Agent, keep: &dyn Fn(&TaskCategory) -> bool, mark: Option<&str>| {
            #[allow(deprecated)]
            if agent.supported_task_categories.is_empty() {
                agent.supported_task_categories =
                    agent.supported_task_types.iter().map(|t| admin::TaskCategory { name: t.clone(), version: 0 }).collect();
            }
            agent.supported_task_categories.retain(|c| {
                let cat = TaskCategory::new(c.name.clone(), c.version);
                keep(&cat) && caller.as_ref().is_none_or(|p| p.allows_task_type(&cat.name)) && !seen.contains(&cat)
            });
            if agent.supported_task_categories.is_empty() {
                return;
            }
            seen.extend(agent.supported_task_categories.iter().map(|c| TaskCategory::new(c.name.clone(), c.version)));
            #[allow(deprecated)]
            {
                agent.supported_task_types = agent.supported_task_categories.iter().map(|c| c.name.clone()).collect();
                agent.supported_task_types.dedup();
            }
            if let Some(group) = mark {
                agent.name = format!("{} (remote: group {group})", agent.name);
            }
            out.push(agent);
        };
        // What a request naming no project, domain or label reaches comes first: routes
        // without such conditions, then this gateway's agents; then what conditional
        // routes add.
        let unconditional = |r: &&Route| r.config.project.is_none() && r.config.domain.is_none() && r.config.labels.is_empty();
        let (plain, conditional): (Vec<&Route>, Vec<&Route>) = self.routes.iter().partition(unconditional);
        let fallback = Route::fallback();
        for route in plain.into_iter().chain(std::iter::once(&fallback)).chain(conditional) {
            let keep = |c: &TaskCategory| route.may_match(c);
            match &route.target {
                Target::Local => self.registry().agents().into_iter().for_each(|a| add(a, &keep, None)),
                Target::Agent(name) => {
                    if let Ok(a) = self.registry().agent(name) {
                        add(a, &keep, None);
                    }
                }
                Target::Group(name) => {
                    let Some(group) = self.groups.get(name) else { continue };
                    match group.agents().await {
                        Ok(agents) => agents.into_iter().for_each(|a| add(a, &keep, Some(name))),
                        Err(e) => tracing::warn!(group = %name, error = %e.message, "cannot list the group's agents"),
                    }
                }
            }
        }
        Ok(out)
    }

    async fn do_get_agent(&self, name: &str) -> Result<admin::Agent, AgentError> {
        let agents = self.list_agents().await?;
        let bare = |a: &admin::Agent| a.name.split(" (remote: ").next().unwrap_or_default().to_owned();
        agents.iter().find(|a| a.name == name).or_else(|| agents.iter().find(|a| bare(a) == name)).cloned().ok_or_else(|| {
            AgentError::not_found(
                tern_agent_api::error::codes::AGENT_NOT_FOUND,
                format!("no agent named {name:?}; known agents: {:?}", agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>()),
            )
        })
    }

    async fn do_create_task(&self, request: admin::CreateTaskRequest) -> Result<Vec<u8>, AgentError> {
        let category = required_template(request.template.as_deref(), "CreateTaskRequest")?;
        let (route, scope, _slot) = {
            let subject = Subject::new(&category, request.task_execution_metadata.as_deref());
            authorize(&category, subject.project, subject.domain)?;
            if let Some(inputs) = &request.inputs {
                self.metrics.observe_input_bytes(&category.name, prost::Message::encoded_len(inputs));
            }
            let scope = Scope {
                project: subject.project.unwrap_or_default().to_owned(),
                domain: subject.domain.unwrap_or_default().to_owned(),
                task: subject.execution_text(),
            };
            let route = self.route_for(&subject);
            let slot = match route {
                Some(r) => Some(r.limits.admit(&subject).await?),
                None => None,
            };
            (route, scope, slot)
        };
        let Some(route) = route else {
            let inner = self.local.create_task(request).await?;
            return Ok(self.sealer.seal(Owner::Local, scope, &inner));
        };
        let deadline = route.config.deadline;
        match &route.target {
            Target::Local => {
                let inner = within(deadline, self.local.create_task(request)).await?;
                Ok(self.sealer.seal(Owner::Local, scope, &inner))
            }
            Target::Agent(name) => {
                self.check_named_agent(route, name, &category)?;
                let inner = within(deadline, self.local.create_task(request)).await?;
                Ok(self.sealer.seal(Owner::Local, scope, &inner))
            }
            Target::Group(name) => {
                let group = self.group(name)?;
                let (inner, ep) = within(deadline, group.first_answer(|c| c.create_task(request.clone()))).await?;
                let owner = Owner::Remote { group: name.clone(), endpoint: ep.url.clone(), region: ep.region.clone() };
                Ok(self.sealer.seal(owner, scope, &inner))
            }
        }
    }

    async fn do_get_task(&self, mut request: admin::GetTaskRequest) -> Result<admin::Resource, AgentError> {
        #[allow(deprecated)]
        let at = self.locate(request.task_category.as_ref(), &request.task_type, &mut request.resource_meta)?;
        match at {
            At::Local => self.local.get_task(request).await,
            remote @ At::Remote(_, ep) => remote.finish(ep.client.get_task(request).await),
        }
    }

    async fn do_delete_task(&self, mut request: admin::DeleteTaskRequest) -> Result<(), AgentError> {
        #[allow(deprecated)]
        let at = self.locate(request.task_category.as_ref(), &request.task_type, &mut request.resource_meta)?;
        match at {
            At::Local => self.local.delete_task(request).await,
            remote @ At::Remote(_, ep) => remote.finish(ep.client.delete_task(request).await),
        }
    }

    async fn do_execute_task_sync(
        &self,
        header: admin::CreateRequestHeader,
        inputs: core::LiteralMap,
    ) -> Result<admin::Resource, AgentError> {
        let category = required_template(header.template.as_deref(), "CreateRequestHeader")?;
        let (route, _slot) = {
            let subject = Subject::new(&category, header.task_execution_metadata.as_deref());
            authorize(&category, subject.project, subject.domain)?;
            let route = self.route_for(&subject);
            let slot = match route {
                Some(r) => Some(r.limits.admit(&subject).await?),
                None => None,
            };
            (route, slot)
        };
        let Some(route) = route else {
            return self.local.execute_task_sync(header, inputs).await;
        };
        let deadline = route.config.deadline;
        match &route.target {
            Target::Local => within(deadline, self.local.execute_task_sync(header, inputs)).await,
            Target::Agent(name) => {
                self.check_named_agent(route, name, &category)?;
                within(deadline, self.local.execute_task_sync(header, inputs)).await
            }
            Target::Group(name) => {
                let group = self.group(name)?;
                let (resource, _) = within(
                    deadline,
                    group.first_answer(|c| {
                        let (h, i) = (header.clone(), inputs.clone());
                        async move { c.execute_task_sync(h, i).await }
                    }),
                )
                .await?;
                Ok(resource)
            }
        }
    }

    async fn do_get_task_metrics(
        &self,
        mut request: admin::GetTaskMetricsRequest,
    ) -> Result<admin::GetTaskMetricsResponse, AgentError> {
        #[allow(deprecated)]
        let at = self.locate(request.task_category.as_ref(), &request.task_type, &mut request.resource_meta)?;
        match at {
            At::Local => self.local.get_task_metrics(request).await,
            remote @ At::Remote(_, ep) => remote.finish(ep.client.get_task_metrics(request).await),
        }
    }

    async fn do_get_task_logs(
        &self,
        mut request: admin::GetTaskLogsRequest,
    ) -> Result<Vec<admin::GetTaskLogsResponse>, AgentError> {
        #[allow(deprecated)]
        let at = self.locate(request.task_category.as_ref(), &request.task_type, &mut request.resource_meta)?;
        match at {
            At::Local => self.local.get_task_logs(request).await,
            remote @ At::Remote(_, ep) => remote.finish(ep.client.get_task_logs(request).await),
        }
    }
}

/// The task type a request names (for labels), empty when it names none.
fn template_type(t: Option<&core::TaskTemplate>) -> &str {
    t.map(|t| t.r#type.as_str()).unwrap_or_default()
}

#[allow(deprecated)]
fn requested_type<'a>(category: Option<&'a admin::TaskCategory>, task_type: &'a str) -> &'a str {
    category.map(|c| c.name.as_str()).filter(|n| !n.is_empty()).unwrap_or(task_type)
}

/// What a request's handle says about the task, for the call's span.
fn handle_task(sealer: &Sealer, meta: &[u8]) -> String {
    sealer.open(meta).ok().flatten().map(|e| e.scope.task).unwrap_or_default()
}

/// The metadata's task execution, for the call's span.
fn execution_of(meta: Option<&admin::TaskExecutionMetadata>, category: &str) -> String {
    let c = TaskCategory::new(category, 0);
    Subject::new(&c, meta).execution_text()
}

/// Measures a call and runs it in a span carrying the task execution id (computed only
/// when the span is recorded: it costs a parse of the handle).
macro_rules! measured {
    ($self:ident, $rpc:literal, $task_type:expr, $task:expr, $call:expr) => {{
        let task_type: &str = $task_type;
        let timer = $self.metrics.start($rpc, task_type);
        let task: String = if tracing::enabled!(tracing::Level::INFO) { $task.to_string() } else { String::new() };
        let span = tracing::info_span!("rpc", rpc = $rpc, task_type = %task_type, task_execution_id = %task);
        let result = $call.instrument(span.clone()).await;
        match &result {
            Ok(_) => tracing::debug!(parent: &span, status = "OK", "served"),
            Err(e) => tracing::debug!(parent: &span, status = ?e.grpc_code(), code = %e.code, error = %e.message, "served"),
        }
        timer.finish(&result);
        result
    }};
}

#[async_trait]
impl AgentClient for Router {
    fn describe(&self) -> String {
        "gateway".into()
    }

    async fn list_agents(&self) -> Result<Vec<admin::Agent>, AgentError> {
        measured!(self, "ListAgents", "", "", self.do_list_agents())
    }

    async fn get_agent(&self, name: &str) -> Result<admin::Agent, AgentError> {
        measured!(self, "GetAgent", "", "", self.do_get_agent(name))
    }

    async fn create_task(&self, request: admin::CreateTaskRequest) -> Result<Vec<u8>, AgentError> {
        let task_type = template_type(request.template.as_deref()).to_owned();
        let task = || execution_of(request.task_execution_metadata.as_deref(), &task_type);
        measured!(self, "CreateTask", &task_type, task(), self.do_create_task(request))
    }

    async fn get_task(&self, request: admin::GetTaskRequest) -> Result<admin::Resource, AgentError> {
        #[allow(deprecated)]
        let task_type = requested_type(request.task_category.as_ref(), &request.task_type).to_owned();
        let task = || handle_task(&self.sealer, &request.resource_meta);
        measured!(self, "GetTask", &task_type, task(), self.do_get_task(request))
    }

    async fn delete_task(&self, request: admin::DeleteTaskRequest) -> Result<(), AgentError> {
        #[allow(deprecated)]
        let task_type = requested_type(request.task_category.as_ref(), &request.task_type).to_owned();
        let task = || handle_task(&self.sealer, &request.resource_meta);
        measured!(self, "DeleteTask", &task_type, task(), self.do_delete_task(request))
    }

    async fn execute_task_sync(
        &self,
        header: admin::CreateRequestHeader,
        inputs: core::LiteralMap,
    ) -> Result<admin::Resource, AgentError> {
        let task_type = template_type(header.template.as_deref()).to_owned();
        let task = execution_of(header.task_execution_metadata.as_deref(), &task_type);
        self.metrics.observe_input_bytes(&task_type, prost::Message::encoded_len(&inputs));
        measured!(self, "ExecuteTaskSync", &task_type, task.clone(), self.do_execute_task_sync(header, inputs))
    }

    async fn get_task_metrics(
        &self,
        request: admin::GetTaskMetricsRequest,
    ) -> Result<admin::GetTaskMetricsResponse, AgentError> {
        #[allow(deprecated)]
        let task_type = requested_type(request.task_category.as_ref(), &request.task_type).to_owned();
        let task = || handle_task(&self.sealer, &request.resource_meta);
        measured!(self, "GetTaskMetrics", &task_type, task(), self.do_get_task_metrics(request))
    }

    async fn get_task_logs(
        &self,
        request: admin::GetTaskLogsRequest,
    ) -> Result<Vec<admin::GetTaskLogsResponse>, AgentError> {
        #[allow(deprecated)]
        let task_type = requested_type(request.task_category.as_ref(), &request.task_type).to_owned();
        let task = || handle_task(&self.sealer, &request.resource_meta);
        measured!(self, "GetTaskLogs", &task_type, task(), self.do_get_task_logs(request))
    }
}
