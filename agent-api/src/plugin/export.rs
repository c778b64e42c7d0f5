//! Plugin side: what [`export_agent!`](crate::export_agent) generates calls. An author
//! writes an ordinary [`AgentFactory`] (and the agent it builds) and exports it with the
//! macro; everything here is automatic: settings checks, the agent's tokio runtime, the
//! host's data store and secrets, and catching every panic before it reaches the boundary.
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use prost::Message;
use tokio::runtime::Runtime;

use super::abi::{op, AgentDeclaration, HostVTable, ReplyFn, StrRef, ADMISSION_CALL, ADMISSION_JOB};
use super::host_link::{HostDataStore, HostLink, HostSecrets};
use super::reply::Replier;
use super::wire::{
    call_panic_error, exposure_name, panic_message, plugin_codes, CallRequest, Described, DescribedCategory, DescribedStates,
    HostFacts, InitArgs, LogsReply, MetricsReply, PrepareArgs, Prepared, StatusReply,
};
use crate::admission::{Admission, OnFull};
use crate::agent::{MetricsQuery, TaskRequest};
use crate::context::{AgentServices, TaskContext};
use crate::error::{codes, AgentError};
use crate::factory::{AdmissionScope, AgentFactory, AgentInit, HostResources};
use crate::idempotency::IdempotencyKey;
use crate::metrics::AgentMetrics;
use crate::registry::AgentHandle;
use crate::resource_meta::ResourceMeta;

/// The declaration of one factory (used by [`export_agent!`](crate::export_agent)).
pub const fn agent_declaration<F: AgentFactory>() -> AgentDeclaration {
    AgentDeclaration {
        name: StrRef::new(F::NAME),
        description: StrRef::new(F::DESCRIPTION),
        admission: match F::ADMISSION {
            AdmissionScope::Call => ADMISSION_CALL,
            AdmissionScope::Job => ADMISSION_JOB,
        },
        prepare: Some(prepare::<F>),
        init: Some(init::<F>),
        call: Some(call::<F>),
        drop_instance: Some(drop_instance),
    }
}

/// The runtime every agent of this library runs its calls on (its own: the host's cannot
/// be shared across the boundary). Created on first use, never shut down.
fn runtime() -> Result<&'static Runtime, AgentError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("tern-plugin")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| AgentError::internal(codes::INTERNAL, format!("the plugin cannot start its async runtime: {e}")))
}

struct Instance {
    plugin: &'static str,
    agent: AgentHandle,
    services: AgentServices,
    runtime: &'static Runtime,
}

/// # Safety
/// `ptr` must be null with `len == 0`, or point to `len` bytes readable for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, AgentError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AgentError::internal(plugin_codes::PROTOCOL, format!("the host's {what} arguments cannot be decoded: {e}")))
}

fn settings<F: AgentFactory>(value: serde_json::Value) -> Result<F::Config, AgentError> {
    let value = if value.is_null() { serde_json::Value::Object(Default::default()) } else { value };
    serde_json::from_value(value).map_err(|e| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, e.to_string()))
}

fn host_resources(facts: &HostFacts) -> HostResources {
    HostResources {
        cpus: facts.cpus.max(1),
        memory_bytes: facts.memory_bytes,
        temp_dir: PathBuf::from(&facts.temp_dir),
        env: Arc::default(),
    }
}

/// A panic while starting (settings, build): a start-up error of its own code.
fn start_panic(plugin: &str, op: &str, payload: Box<dyn std::any::Any + Send>) -> AgentError {
    let e = AgentError::internal(
        plugin_codes::PANICKED_AT_START,
        format!("plugin {plugin} panicked during {op}: {}", panic_message(&*payload)),
    );
    drop_payload(payload);
    e
}

/// Drops a panic payload without letting a panicking `Drop` escape.
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

unsafe extern "C" fn prepare<F: AgentFactory>(args: *const u8, len: usize, reply: ReplyFn, reply_ctx: *mut c_void) {
    // SAFETY: the host's reply pair, answered exactly once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "prepare") };
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u8>, AgentError> {
        // SAFETY: the host passes `len` readable bytes for the duration of this call.
        let args: PrepareArgs = json(unsafe { bytes(args, len) }, "prepare")?;
        let host = host_resources(&args.host);
        let config = F::with_host_defaults(settings::<F>(args.settings)?, &host, args.max_concurrency);
        let prepared = Prepared {
            exposure: exposure_name(F::exposure(&config)).to_owned(),
            effective: serde_json::to_value(&config)
                .map_err(|e| AgentError::internal(codes::INTERNAL, format!("cannot show the settings: {e}")))?,
        };
        serde_json::to_vec(&prepared).map_err(|e| AgentError::internal(codes::INTERNAL, e.to_string()))
    }));
    match result {
        Ok(Ok(payload)) => replier.ok(&payload),
        Ok(Err(e)) => replier.err(&e),
        Err(panic) => replier.err(&start_panic(F::NAME, "prepare", panic)),
    }
}

unsafe extern "C" fn init<F: AgentFactory>(
    args: *const u8,
    len: usize,
    host: *const HostVTable,
    instance: *mut *mut c_void,
    reply: ReplyFn,
    reply_ctx: *mut c_void,
) {
    // SAFETY: the host's reply pair, answered exactly once by the `Replier`.
    let replier = unsafe { Replier::new(reply, reply_ctx, "init") };
    // SAFETY: the host hands its table over to this instance (released when unused).
    let link = unsafe { HostLink::new(host) };
    let log = link.as_ref().ok().and_then(|l| l.log());
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(*mut c_void, Vec<u8>), AgentError> {
        let link = link.map_err(|missing| AgentError::internal(plugin_codes::PROTOCOL, missing))?;
        if instance.is_null() {
            return Err(AgentError::internal(plugin_codes::PROTOCOL, "the host passed no place for the instance"));
        }
        // SAFETY: the host passes `len` readable bytes for the duration of this call.
        let args: InitArgs = json(unsafe { bytes(args, len) }, "init")?;
        if let Some(log) = log {
            super::log::install(log, args.log_level.as_deref());
        }
        let host = host_resources(&args.host);
        let config = F::with_host_defaults(settings::<F>(args.settings)?, &host, args.max_concurrency);
        let runtime = runtime()?;
        let services =
            AgentServices::new(Arc::new(HostDataStore(link.clone())), Arc::new(HostSecrets(link)))?
                .with_metrics(AgentMetrics::default().for_agent(F::NAME));
        let admission = match args.admission {
            Some(a) => Admission::new(
                F::NAME,
                a.max,
                if a.on_full == "reject" { OnFull::Reject } else { OnFull::Queue },
                Duration::from_millis(a.queue_timeout_ms),
            ),
            None => Admission::unlimited(),
        };
        let init = AgentInit { services: services.clone(), admission, host };
        let agent = {
            let _in_runtime = runtime.enter();
            F::build(config, &init)?
        };
        let categories = match &agent {
            AgentHandle::Async(a) => a.task_categories(),
            AgentHandle::Sync(a) => a.task_categories(),
        };
        let described = Described {
            name: agent.name().to_owned(),
            sync: agent.is_sync(),
            categories: categories.into_iter().map(|c| DescribedCategory { name: c.name, version: c.version }).collect(),
            backend_states: agent.backend_states().map(DescribedStates::from_table),
        };
        let payload = serde_json::to_vec(&described).map_err(|e| AgentError::internal(codes::INTERNAL, e.to_string()))?;
        let built = Box::new(Arc::new(Instance { plugin: F::NAME, agent, services, runtime }));
        Ok((Box::into_raw(built) as *mut c_void, payload))
    }));
    match result {
        Ok(Ok((built, payload))) => {
            // SAFETY: `instance` is non-null (checked above) and writable, per the ABI.
            unsafe { *instance = built };
            replier.ok(&payload)
        }
        Ok(Err(e)) => replier.err(&e),
        Err(panic) => replier.err(&start_panic(F::NAME, "init", panic)),
    }
}

unsafe extern "C" fn call<F: AgentFactory>(
    instance: *mut c_void,
    op: u32,
    request: *const u8,
    len: usize,
    reply: ReplyFn,
    reply_ctx: *mut c_void,
) {
    let op_name = op::name(op);
    // SAFETY: the host's reply pair, answered exactly once by the `Replier`.
    let mut replier = Some(unsafe { Replier::new(reply, reply_ctx, op_name) });
    let started = catch_unwind(AssertUnwindSafe(|| -> Result<(), AgentError> {
        if instance.is_null() {
            return Err(AgentError::internal(plugin_codes::PROTOCOL, "call on a null instance"));
        }
        // SAFETY: a non-null instance is the `Box<Arc<Instance>>` made by `init` and not yet
        // dropped (the host drops it only after its last call).
        let instance = unsafe { &*(instance as *const Arc<Instance>) }.clone();
        // SAFETY: the host passes `len` readable bytes for the duration of this call.
        let request = CallRequest::decode(unsafe { bytes(request, len) }).map_err(|e| {
            AgentError::invalid_argument(codes::MALFORMED_PROTOBUF, format!("{op_name} request cannot be decoded: {e}"))
        })?;
        let Some(replier) = replier.take() else { return Ok(()) };
        let runtime = instance.runtime;
        runtime.spawn(async move {
            let plugin = instance.plugin;
            match AssertUnwindSafe(run(instance, op, request)).catch_unwind().await {
                Ok(Ok(payload)) => replier.ok(&payload),
                Ok(Err(e)) => replier.err(&e),
                Err(panic) => {
                    let e = call_panic_error(plugin, op_name, &*panic);
                    drop_payload(panic);
                    replier.err(&e)
                }
            }
        });
        Ok(())
    }));
    let error = match started {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(panic) => {
            let e = call_panic_error(F::NAME, op_name, &*panic);
            drop_payload(panic);
            e
        }
    };
    if let Some(replier) = replier.take() {
        replier.err(&error);
    }
}

unsafe extern "C" fn drop_instance(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the `Box<Arc<Instance>>` made by `init`, dropped once by the host. Calls
        // still running hold their own `Arc`.
        drop(unsafe { Box::from_raw(instance as *mut Arc<Instance>) });
    }));
}

fn context(instance: &Instance, request: &mut CallRequest) -> TaskContext {
    let deadline = request.deadline_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut ctx = instance.services.task_context(
        std::mem::take(&mut request.output_prefix),
        request.execution.take().map(Box::new),
        deadline,
    );
    if !request.idempotency_key.is_empty() {
        ctx.idempotency_key = Some(IdempotencyKey::from_string(std::mem::take(&mut request.idempotency_key)));
    }
    ctx
}

fn task(request: &mut CallRequest) -> Result<TaskRequest, AgentError> {
    let template = request
        .template
        .take()
        .ok_or_else(|| AgentError::invalid_argument(codes::INVALID_REQUEST, "the task template is required"))?;
    Ok(TaskRequest { template: Box::new(template), inputs: request.inputs.take().unwrap_or_default() })
}

async fn run(instance: Arc<Instance>, op: u32, mut request: CallRequest) -> Result<Vec<u8>, AgentError> {
    let ctx = context(&instance, &mut request);
    let meta = ResourceMeta::from_bytes(std::mem::take(&mut request.resource_meta));
    match (&instance.agent, op) {
        (AgentHandle::Async(a), op::CREATE) => Ok(a.create(&ctx, task(&mut request)?).await?.into_bytes()),
        (AgentHandle::Async(a), op::GET) => Ok(StatusReply::from_status(a.get(&ctx, &meta).await?).encode_to_vec()),
        (AgentHandle::Async(a), op::DELETE) => a.delete(&ctx, &meta).await.map(|()| Vec::new()),
        (AgentHandle::Async(a), op::METRICS) => {
            let query = MetricsQuery {
                queries: request.queries,
                start_time: request.start_time,
                end_time: request.end_time,
                step: request.step,
            };
            Ok(MetricsReply { results: a.metrics(&ctx, &meta, query).await? }.encode_to_vec())
        }
        (AgentHandle::Async(a), op::LOGS) => {
            let page = a.logs(&ctx, &meta, request.log_lines, &request.log_token).await?;
            Ok(LogsReply { lines: page.lines, next_token: page.next_token }.encode_to_vec())
        }
        (AgentHandle::Sync(a), op::EXECUTE) => {
            Ok(StatusReply::from_status(a.execute(&ctx, task(&mut request)?).await?).encode_to_vec())
        }
        (agent, op) => Err(AgentError::invalid_argument(
            codes::WRONG_EXECUTION_MODE,
            format!(
                "plugin agent {:?} is {} and does not offer {}",
                agent.name(),
                if agent.is_sync() { "synchronous" } else { "asynchronous" },
                op::name(op)
            ),
        )),
    }
}

/// Exports one or more [`AgentFactory`] types from a `cdylib`, as a Tern plugin:
///
/// ```ignore
/// tern_agent_api::export_agent!(GreeterFactory);
/// tern_agent_api::export_agent!(GreeterFactory, WordCountFactory);
/// ```
///
/// It defines the library's one exported symbol, `tern_plugin_declaration`. Requires the
/// crate feature `plugin` and `panic = "unwind"` (the default): panics are caught and
/// reported, never unwound into the gateway.
#[macro_export]
macro_rules! export_agent {
    ($($factory:ty),+ $(,)?) => {
        const _: () = {
            #[cfg(panic = "abort")]
            compile_error!("a Tern plugin must be built with panic = \"unwind\" (the default) so a panic becomes an error instead of aborting the gateway");

            const AGENTS: &[$crate::plugin::abi::AgentDeclaration] =
                &[$($crate::plugin::export::agent_declaration::<$factory>()),+];

            static DECLARATION: $crate::plugin::abi::PluginDeclaration = $crate::plugin::abi::PluginDeclaration {
                abi_version: $crate::plugin::abi::ABI_VERSION,
                agent_count: AGENTS.len() as u32,
                api_version: $crate::plugin::abi::StrRef::new($crate::plugin::abi::API_VERSION),
                agents: AGENTS.as_ptr(),
            };

            /// The Tern plugin declaration (ABI version first).
            #[no_mangle]
            pub extern "C" fn tern_plugin_declaration() -> *const $crate::plugin::abi::PluginDeclaration {
                &DECLARATION
            }
        };
    };
}
