//! The checks. Each returns one named [`CheckResult`]; a check records every problem it
//! finds (not only the first), and notes what it did and which rule it applied.
use crate::error::{codes, AgentError, ErrorClass};
use crate::outputs::check_outputs;
use crate::proto::flyteidl::{admin, core};
use crate::states::{StateTable, UNDECLARED_STATE_PROBE};
use crate::status::{is_terminal, Phase};

use super::case::StatesDecl;
use super::probes::{probes, Probe, ProbeKind};
use super::report::CheckResult;
use super::session::{clean_refusal, cut, describe_error, describe_resource, phase_of, Handle, Session};

pub const AGENT_METADATA: &str = "agent_metadata";
pub const IDEMPOTENT_CREATE: &str = "idempotent_create";
pub const BAD_RESOURCE_META: &str = "bad_resource_meta";
pub const DELETE_IDEMPOTENT: &str = "delete_idempotent";
pub const OUTPUTS_MATCH_INTERFACE: &str = "outputs_match_interface";
pub const FAILURE_REPORTED: &str = "failure_reported";
pub const EXECUTION_MODE: &str = "execution_mode";
pub const UNKNOWN_TASK_TYPE: &str = "unknown_task_type";
pub const BACKEND_STATES: &str = "backend_states";

/// Every check, in the order they run (`backend_states` last: it may drive the backend).
pub const ALL: &[&str] = &[
    AGENT_METADATA,
    IDEMPOTENT_CREATE,
    BAD_RESOURCE_META,
    DELETE_IDEMPOTENT,
    OUTPUTS_MATCH_INTERFACE,
    FAILURE_REPORTED,
    EXECUTION_MODE,
    UNKNOWN_TASK_TYPE,
    BACKEND_STATES,
];

/// The one-line requirement of each check.
pub fn title(name: &str) -> &'static str {
    match name {
        AGENT_METADATA => "ListAgents and GetAgent name exactly one agent serving the task category, in the mode it runs in",
        IDEMPOTENT_CREATE => "CreateTask repeated with one task_execution_id gives one job; another retry attempt gives another",
        BAD_RESOURCE_META => "GetTask/DeleteTask with garbled resource_meta is a clean INVALID_ARGUMENT/NOT_FOUND; a job nobody created is that or a terminal failure; never a panic, INTERNAL or a task that looks alive",
        DELETE_IDEMPOTENT => "DeleteTask answers OK twice on a running job, on a finished job and after the job is gone; GetTask then reports ABORTED or the phase it finished with",
        OUTPUTS_MATCH_INTERFACE => "the successful task SUCCEEDS with outputs matching the template's interface (and equal to the expected outputs, when given)",
        FAILURE_REPORTED => "the failing task ends FAILED/RETRYABLE_FAILED with a message, or is refused at create with a clean error; never a panic, INTERNAL or SUCCEEDED",
        EXECUTION_MODE => "a sync agent's ExecuteTaskSync ends in a terminal phase (reaching the backend once, when jobs are counted) and its async API is refused as the wrong mode (TERN-A007); an async agent's ExecuteTaskSync likewise",
        UNKNOWN_TASK_TYPE => "an unknown task type, or an unknown version of this one, is NOT_FOUND naming it",
        BACKEND_STATES => "every declared backend state maps to a defined phase, once; an undeclared state is the explicit retryable failure TERN-B001, naming it",
        _ => "",
    }
}

fn result(name: &'static str) -> CheckResult {
    CheckResult::new(name, title(name))
}

/// A contained panic or an internal error is never a clean answer.
fn not_a_crash(e: &AgentError) -> Result<(), String> {
    if e.code == codes::INTERNAL {
        return Err(format!("the agent panicked or hit an internal bug: {}", describe_error(e)));
    }
    if e.class == ErrorClass::Internal {
        return Err(format!("INTERNAL/UNKNOWN is not a clean answer: {}", describe_error(e)));
    }
    if e.message.trim().is_empty() {
        return Err(format!("{:?} with an empty message", e.grpc_code()));
    }
    Ok(())
}

pub(crate) async fn agent_metadata(s: &Session, listed_sync: &mut Option<bool>) -> CheckResult {
    let mut r = result(AGENT_METADATA);
    let want = &s.category;
    match s.client.list_agents().await {
        Err(e) => r.fail(format!("ListAgents failed: {}", describe_error(&e))),
        Ok(agents) => {
            #[allow(deprecated)]
            let serving: Vec<&admin::Agent> = agents
                .iter()
                .filter(|a| {
                    a.supported_task_categories.iter().any(|c| c.name == want.name && c.version == want.version)
                        || (want.version == 0 && a.supported_task_types.contains(&want.name))
                })
                .collect();
            match serving.as_slice() {
                [] => r.fail(format!(
                    "no agent listed by ListAgents serves {:?} version {}; listed: {:?}",
                    want.name,
                    want.version,
                    agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>()
                )),
                [a] => {
                    *listed_sync = Some(a.is_sync);
                    r.note(format!("agent {:?} serves it ({})", a.name, if a.is_sync { "sync" } else { "async" }));
                    match s.client.get_agent(&a.name).await {
                        Ok(b) => {
                            r.require(b.name == a.name && b.is_sync == a.is_sync, || {
                                format!("GetAgent({:?}) disagrees with ListAgents: {:?} is_sync={}", a.name, b.name, b.is_sync)
                            });
                        }
                        Err(e) => r.fail(format!("GetAgent({:?}) failed: {}", a.name, describe_error(&e))),
                    }
                }
                many => r.fail(format!(
                    "several agents claim {:?} version {}: {:?}",
                    want.name,
                    want.version,
                    many.iter().map(|a| a.name.as_str()).collect::<Vec<_>>()
                )),
            }
        }
    }
    if let (Some(listed), Some(agent)) = (*listed_sync, &s.case.agent) {
        r.require(listed == agent.is_sync(), || {
            format!("the agent object is {} but the server lists it as {}", mode(agent.is_sync()), mode(listed))
        });
    }
    r
}

fn mode(sync: bool) -> &'static str {
    if sync {
        "sync"
    } else {
        "async"
    }
}

pub(crate) async fn idempotent_create(s: &Session) -> CheckResult {
    let mut r = result(IDEMPOTENT_CREATE);
    if s.is_sync {
        return r.skip("sync agent: ExecuteTaskSync runs the task on each call and returns no handle to find again (Flyte re-runs sync tasks too)");
    }
    let spec = &s.case.success;
    let node = "idempotent";
    let before = s.count_jobs().await;
    let (a, b) = tokio::join!(s.create(spec, node, 0), s.create(spec, node, 0));
    let c = s.create(spec, node, 0).await;
    let mut handles = Vec::new();
    for (i, created) in [a, b, c].into_iter().enumerate() {
        match created {
            Ok(h) => handles.push(h),
            Err(e) => r.fail(format!("CreateTask #{} failed: {}", i + 1, describe_error(&e))),
        }
    }
    if handles.len() < 3 {
        forget(s, &handles).await;
        return r;
    }
    r.note("three CreateTask calls with one task_execution_id (two at once, then one more)");
    let mut distinct: Vec<&Handle> = Vec::new();
    for h in &handles {
        if !distinct.iter().any(|d| d.meta == h.meta) {
            distinct.push(h);
        }
    }
    let mut after = None;
    if let Some(before) = before {
        for h in &distinct {
            if let Err(e) = s.poll(h).await {
                r.fail(format!("the job did not finish: {e}"));
            }
        }
        tokio::time::sleep(s.case.settle).await;
        let now = s.count_jobs().await.unwrap_or(before);
        let n = now.saturating_sub(before);
        r.note(format!("rule: count_jobs — the backend counted {n} new job(s) ({} distinct handle(s))", distinct.len()));
        r.require(n == 1, || format!("expected exactly 1 job at the backend for one task_execution_id, counted {n}"));
        after = Some(now);
    } else if distinct.len() == 1 {
        r.note("rule: identical resource_meta — all three creates returned the same bytes (so GetTask/DeleteTask cannot tell them apart)");
    } else if let Some(long) = &s.case.long_running {
        r.note(format!(
            "rule: cancel through one handle — the creates returned {} different handles; with no count_jobs, the long_running task is created twice with one task_execution_id, deleted through the first handle, and must then be ABORTED through the second",
            distinct.len()
        ));
        let node = "idempotent-cancel";
        match (s.create(long, node, 0).await, s.create(long, node, 0).await) {
            (Ok(first), Ok(second)) => {
                if let Err(e) = s.delete(&first.meta).await {
                    r.fail(format!("DeleteTask through the first handle failed: {}", describe_error(&e)));
                }
                match s.poll(&second).await {
                    Ok(res) => {
                        r.require(phase_of(&res) == Phase::Aborted, || {
                            format!(
                                "deleting through the first handle did not stop the job behind the second ({}): two creates with one task_execution_id made two jobs",
                                describe_resource(&res)
                            )
                        });
                    }
                    Err(e) => r.fail(format!(
                        "after deleting through the first handle, the second handle's job {e}: two creates with one task_execution_id made two jobs"
                    )),
                }
                s.forget(&[&first, &second]).await;
            }
            (a, b) => {
                for e in [a.err(), b.err()].into_iter().flatten() {
                    r.fail(format!("CreateTask of the long_running task failed: {}", describe_error(&e)));
                }
            }
        }
        for h in &distinct {
            if let Err(e) = s.poll(h).await {
                r.fail(format!("a handle did not finish: {e}"));
            }
        }
    } else {
        r.note(format!(
            "rule: same terminal result — the creates returned {} different handles, and neither count_jobs nor a long_running task was given; the kit can only require that they end alike (weaker: two jobs with equal results pass too)",
            distinct.len()
        ));
        let mut ends = Vec::new();
        for h in &distinct {
            match s.poll(h).await {
                Ok(res) => ends.push((phase_of(&res), res.outputs.clone(), describe_resource(&res))),
                Err(e) => r.fail(format!("a handle did not finish: {e}")),
            }
        }
        if ends.windows(2).any(|w| (w[0].0, &w[0].1) != (w[1].0, &w[1].1)) {
            r.fail(format!(
                "the handles of one task_execution_id reached different results, so they are different jobs: {}",
                ends.iter().map(|e| e.2.as_str()).collect::<Vec<_>>().join(" vs ")
            ));
        }
    }
    match s.create(spec, node, 1).await {
        Err(e) => r.fail(format!("CreateTask for retry attempt 1 failed: {}", describe_error(&e))),
        Ok(d) => {
            if let Some(after) = after {
                if let Err(e) = s.poll(&d).await {
                    r.fail(format!("the retry attempt's job did not finish: {e}"));
                }
                tokio::time::sleep(s.case.settle).await;
                let n = s.count_jobs().await.unwrap_or(after).saturating_sub(after);
                r.note(format!("retry attempt 1: the backend counted {n} new job(s)"));
                r.require(n == 1, || format!("retry attempt 1 must be exactly one new job at the backend, counted {n}"));
            } else if d.meta != handles[0].meta {
                r.note("retry attempt 1 returned another handle");
            } else if s.case.self_describing {
                r.note("retry attempt 1 returned the same bytes as attempt 0 (acceptable: the handles are self-describing)");
            } else {
                r.fail("retry attempt 1 returned the resource_meta of attempt 0: a new attempt must be a new job (the idempotency key includes retry_attempt)");
            }
            handles.push(d);
        }
    }
    forget(s, &handles).await;
    r
}

async fn forget(s: &Session, handles: &[Handle]) {
    s.forget(&handles.iter().collect::<Vec<_>>()).await;
}

pub(crate) async fn bad_resource_meta(s: &Session) -> CheckResult {
    let mut r = result(BAD_RESOURCE_META);
    let real = if s.is_sync {
        r.note("sync agent: GetTask/DeleteTask must refuse every probe (the async API is the wrong mode)");
        None
    } else {
        match s.create(&s.case.success, "bad-handles", 0).await {
            Ok(h) => Some(h),
            Err(e) => {
                r.fail(format!("CreateTask of the successful task failed: {}", describe_error(&e)));
                None
            }
        }
    };
    let token = format!("{}-unknown-", s.run);
    let all = probes(real.as_ref().map(|h| h.meta.as_slice()), &token);
    if real.is_some() && !all.iter().any(|p| p.kind == ProbeKind::Unknown) {
        r.note("the agent's handle is not a JSON object with fields: no probes derived from it");
    }
    let prefix = s.prefix("bad-handles", 0);
    for p in &all {
        let got = s.get(&p.bytes, &prefix).await;
        judge_get(&mut r, s, p, got);
        let deleted = s.delete(&p.bytes).await;
        judge_delete(&mut r, p, deleted);
    }
    r.note(format!(
        "{} probes, each through GetTask and DeleteTask: {}",
        all.len(),
        all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join("; ")
    ));
    if let Some(h) = real {
        match s.poll(&h).await {
            Ok(res) => r.note(format!("the real job, asked after the probes: {}", describe_resource(&res))),
            Err(e) => r.fail(format!("the real job, asked after the probes: {e}")),
        }
        s.forget(&[&h]).await;
    }
    r
}

fn judge_get(r: &mut CheckResult, s: &Session, p: &Probe, got: Result<admin::Resource, AgentError>) {
    match (p.kind, got) {
        (kind, Err(e)) => match clean_refusal(&e) {
            Err(why) => r.fail(format!("GetTask with {}: {why}", p.name)),
            Ok(()) if kind == ProbeKind::Unknown => r.note(format!("a job nobody created: GetTask answered {}", describe_error(&e))),
            Ok(()) => {}
        },
        (ProbeKind::Garbled, Ok(res)) => {
            r.fail(format!("GetTask accepted a garbled handle ({}) and reported {}", p.name, describe_resource(&res)));
        }
        (ProbeKind::Unknown, Ok(res)) => {
            let phase = phase_of(&res);
            match phase {
                Phase::Undefined => r.fail(format!("GetTask with {} reported phase {} (UNDEFINED)", p.name, res.phase)),
                Phase::Failed | Phase::RetryableFailed | Phase::Aborted => {
                    if r.require(!res.message.trim().is_empty(), || format!("GetTask with {}: {} without a message", p.name, phase.as_str_name())) {
                        r.note(format!("a job nobody created reports {}", describe_resource(&res)));
                    }
                    if let Some(e) = &res.agent_error {
                        r.require(e.code != codes::INTERNAL, || format!("GetTask with {}: the agent panicked: {}", p.name, describe_resource(&res)));
                    }
                }
                _ if s.case.self_describing => {
                    r.note(format!("a job nobody created reports {} (self-describing handles)", describe_resource(&res)))
                }
                _ => r.fail(format!(
                    "GetTask reported {} for a job nobody created ({}): an unknown job must be NOT_FOUND/INVALID_ARGUMENT or a terminal failure, not a task that looks alive or done (propeller would wait on it or read outputs that do not exist); if the handle carries the whole job, say so with Case::self_describing_handles",
                    describe_resource(&res),
                    p.name
                )),
            }
        }
    }
}

fn judge_delete(r: &mut CheckResult, p: &Probe, deleted: Result<(), AgentError>) {
    match (p.kind, deleted) {
        (_, Err(e)) => {
            if let Err(why) = clean_refusal(&e) {
                r.fail(format!("DeleteTask with {}: {why}", p.name));
            }
        }
        (ProbeKind::Garbled, Ok(())) => r.fail(format!(
            "DeleteTask answered OK for a garbled handle ({}): nothing can have been cancelled, and the caller's corrupt record goes unnoticed",
            p.name
        )),
        (ProbeKind::Unknown, Ok(())) => {}
    }
}

pub(crate) async fn delete_idempotent(s: &Session) -> CheckResult {
    let mut r = result(DELETE_IDEMPOTENT);
    if s.is_sync {
        return r.skip("sync agent: there is no job to delete");
    }
    let (spec, strict) = match &s.case.long_running {
        Some(l) => (l, true),
        None => {
            r.note("no long_running task given: the successful task is deleted, and it may have finished already");
            (&s.case.success, false)
        }
    };
    match s.create(spec, "delete-running", 0).await {
        Err(e) => r.fail(format!("CreateTask failed: {}", describe_error(&e))),
        Ok(h) => {
            let before = match s.get(&h.meta, &h.prefix).await {
                Ok(res) => Some(phase_of(&res)),
                Err(e) => {
                    r.fail(format!("GetTask before DeleteTask failed: {}", describe_error(&e)));
                    None
                }
            };
            let was_running = before.is_some_and(|p| !is_terminal(p));
            if strict && !was_running {
                r.fail(format!(
                    "the long_running task was already {} before DeleteTask: it must still be running",
                    before.map_or("unknown", |p| p.as_str_name())
                ));
            }
            for i in 1..=2 {
                if let Err(e) = s.delete(&h.meta).await {
                    r.fail(format!("DeleteTask #{i} of a running job failed: {}", describe_error(&e)));
                }
            }
            match s.poll(&h).await {
                Err(e) => r.fail(format!("after DeleteTask the job never reached a terminal phase: {e}")),
                Ok(res) => {
                    let end = phase_of(&res);
                    if was_running && strict {
                        r.require(end == Phase::Aborted, || {
                            format!("a running job deleted twice must report ABORTED, got {}", describe_resource(&res))
                        });
                    }
                    r.note(format!(
                        "deleted twice while {}: then {}",
                        before.map_or("unknown", |p| p.as_str_name()),
                        describe_resource(&res)
                    ));
                    if let Err(e) = s.delete(&h.meta).await {
                        r.fail(format!("DeleteTask of a job already deleted failed: {}", describe_error(&e)));
                    }
                    match s.get(&h.meta, &h.prefix).await {
                        Ok(again) => {
                            r.require(phase_of(&again) == end, || {
                                format!("a third DeleteTask changed the job from {} to {}", end.as_str_name(), describe_resource(&again))
                            });
                        }
                        Err(e) => r.fail(format!("GetTask after a third DeleteTask failed: {}", describe_error(&e))),
                    }
                }
            }
        }
    }
    match s.create(&s.case.success, "delete-finished", 0).await {
        Err(e) => r.fail(format!("CreateTask of the successful task failed: {}", describe_error(&e))),
        Ok(h) => match s.poll(&h).await {
            Err(e) => r.fail(format!("the successful task did not finish: {e}")),
            Ok(done) => {
                let end = phase_of(&done);
                for i in 1..=2 {
                    if let Err(e) = s.delete(&h.meta).await {
                        r.fail(format!("DeleteTask #{i} of a job that had finished {} failed: {}", end.as_str_name(), describe_error(&e)));
                    }
                }
                match s.get(&h.meta, &h.prefix).await {
                    Ok(res) => {
                        let now = phase_of(&res);
                        if r.require(now == end || now == Phase::Aborted, || {
                            format!(
                                "after deleting a job that had finished {}, GetTask reports {}: it must stay {} (or ABORTED)",
                                end.as_str_name(),
                                describe_resource(&res),
                                end.as_str_name()
                            )
                        }) {
                            r.note(format!("a job finished {} and deleted twice then reports {}", end.as_str_name(), now.as_str_name()));
                        }
                    }
                    Err(e) => r.fail(format!("GetTask after deleting a finished job failed: {}", describe_error(&e))),
                }
            }
        },
    }
    r
}

pub(crate) async fn outputs_match_interface(s: &Session) -> CheckResult {
    let mut r = result(OUTPUTS_MATCH_INTERFACE);
    let spec = &s.case.success;
    let prefix = s.prefix("outputs", 0);
    let finished = if s.is_sync {
        s.execute(spec, "outputs").await.map_err(|e| format!("ExecuteTaskSync failed: {}", describe_error(&e)))
    } else {
        match s.create(spec, "outputs", 0).await {
            Err(e) => Err(format!("CreateTask failed: {}", describe_error(&e))),
            Ok(h) => s.poll(&h).await,
        }
    };
    let res = match finished {
        Ok(res) => res,
        Err(e) => {
            r.fail(e);
            return r;
        }
    };
    if !r.require(phase_of(&res) == Phase::Succeeded, || format!("the successful task ended {}", describe_resource(&res))) {
        return r;
    }
    let interface = spec.template.interface.as_ref();
    let declared: Vec<&String> = interface.and_then(|i| i.outputs.as_ref()).map(|o| o.variables.keys().collect()).unwrap_or_default();
    let outputs = match s.outputs_of(&res, &prefix).await {
        Ok(Some(o)) => o,
        Ok(None) if declared.is_empty() => core::LiteralMap::default(),
        Ok(None) => {
            r.fail(format!(
                "SUCCEEDED without outputs although the interface declares {declared:?} (if the agent writes <output_prefix>/outputs.pb instead, give Case::outputs_store)"
            ));
            return r;
        }
        Err(e) => {
            r.fail(e);
            return r;
        }
    };
    match check_outputs(interface, &outputs) {
        Ok(()) => r.note(format!("outputs {:?} match the interface", outputs.literals.keys().collect::<Vec<_>>())),
        Err(e) => r.fail(format!("outputs do not match the interface: {}", e.message)),
    }
    if let Some(expected) = &s.case.expected_outputs {
        if &outputs == expected {
            r.note("outputs equal the expected ones");
        } else {
            r.fail(format!("outputs differ from the expected ones: {}", diff(expected, &outputs)));
        }
    }
    r
}

fn diff(expected: &core::LiteralMap, got: &core::LiteralMap) -> String {
    let mut parts = Vec::new();
    for (name, want) in &expected.literals {
        match got.literals.get(name) {
            None => parts.push(format!("{name:?} missing")),
            Some(have) if have != want => {
                parts.push(format!("{name:?}: expected {} got {}", cut(&format!("{want:?}"), 300), cut(&format!("{have:?}"), 300)))
            }
            Some(_) => {}
        }
    }
    for name in got.literals.keys().filter(|n| !expected.literals.contains_key(*n)) {
        parts.push(format!("{name:?} not expected"));
    }
    parts.join("; ")
}

pub(crate) async fn failure_reported(s: &Session) -> CheckResult {
    let mut r = result(FAILURE_REPORTED);
    let Some(spec) = &s.case.failure else {
        return r.skip("no failing task given (Case::failing)");
    };
    let finished = if s.is_sync {
        s.execute(spec, "failure").await
    } else {
        match s.create(spec, "failure", 0).await {
            Err(e) => Err(e),
            Ok(h) => match s.poll(&h).await {
                Ok(res) => Ok(res),
                Err(e) => {
                    r.fail(format!("the failing task: {e}"));
                    return r;
                }
            },
        }
    };
    match finished {
        Err(e) => match not_a_crash(&e) {
            Ok(()) => r.note(format!("refused at once: {}", describe_error(&e))),
            Err(why) => r.fail(format!("the failing task was refused badly: {why}")),
        },
        Ok(res) => {
            let phase = phase_of(&res);
            r.require(matches!(phase, Phase::Failed | Phase::RetryableFailed), || {
                format!("a failing task must end FAILED or RETRYABLE_FAILED, it ended {}", describe_resource(&res))
            });
            r.require(!res.message.trim().is_empty(), || format!("{} without a message", phase.as_str_name()));
            if let Some(e) = &res.agent_error {
                r.require(!e.code.is_empty(), || "agent_error with an empty code".into());
                r.require(e.code != codes::INTERNAL, || format!("the agent panicked: {}", describe_resource(&res)));
            }
            r.note(format!("ended {}", describe_resource(&res)));
        }
    }
    r
}

/// A clean wrong-mode refusal: not a crash, a request-level class, TERN-A007 from a Tern server.
fn wrong_mode(e: &AgentError) -> Result<(), String> {
    not_a_crash(e)?;
    if !matches!(e.class, ErrorClass::InvalidArgument | ErrorClass::FailedPrecondition | ErrorClass::Unimplemented) {
        return Err(format!("expected INVALID_ARGUMENT (or FAILED_PRECONDITION/UNIMPLEMENTED), got {}", describe_error(e)));
    }
    if e.code.starts_with("TERN-") && e.code != codes::WRONG_EXECUTION_MODE {
        return Err(format!("expected code {}, got {}", codes::WRONG_EXECUTION_MODE, describe_error(e)));
    }
    Ok(())
}

pub(crate) async fn execution_mode(s: &Session) -> CheckResult {
    let mut r = result(EXECUTION_MODE);
    let spec = &s.case.success;
    if s.is_sync {
        let before = s.count_jobs().await;
        match s.execute(spec, "mode").await {
            Ok(res) => {
                r.require(is_terminal(phase_of(&res)), || {
                    format!("ExecuteTaskSync must return a terminal phase, got {}", describe_resource(&res))
                });
            }
            Err(e) => r.fail(format!("ExecuteTaskSync failed: {}", describe_error(&e))),
        }
        if let Some(before) = before {
            tokio::time::sleep(s.case.settle).await;
            let n = s.count_jobs().await.unwrap_or(before).saturating_sub(before);
            r.note(format!("one ExecuteTaskSync: the backend counted {n} call(s)"));
            r.require(n == 1, || format!("one ExecuteTaskSync must reach the backend exactly once, counted {n}"));
        }
        match s.create(spec, "mode", 0).await {
            Ok(h) => r.fail(format!("CreateTask on a sync agent returned a handle ({} bytes)", h.meta.len())),
            Err(e) => {
                if let Err(why) = wrong_mode(&e) {
                    r.fail(format!("CreateTask on a sync agent: {why}"));
                }
            }
        }
        let meta = br#"{"v":1}"#;
        match s.get(meta, &s.prefix("mode", 0)).await {
            Ok(res) => r.fail(format!("GetTask on a sync agent answered {}", describe_resource(&res))),
            Err(e) => {
                if let Err(why) = wrong_mode(&e) {
                    r.fail(format!("GetTask on a sync agent: {why}"));
                }
            }
        }
        match s.delete(meta).await {
            Ok(()) => r.fail("DeleteTask on a sync agent answered OK"),
            Err(e) => {
                if let Err(why) = wrong_mode(&e) {
                    r.fail(format!("DeleteTask on a sync agent: {why}"));
                }
            }
        }
        r.note("sync: ExecuteTaskSync ran; CreateTask, GetTask and DeleteTask were refused");
    } else {
        match s.execute(spec, "mode").await {
            Ok(res) => r.fail(format!("ExecuteTaskSync on an async agent answered {}", describe_resource(&res))),
            Err(e) => {
                if let Err(why) = wrong_mode(&e) {
                    r.fail(format!("ExecuteTaskSync on an async agent: {why}"));
                }
            }
        }
        r.note("async: ExecuteTaskSync was refused");
    }
    r
}

/// `NOT_FOUND` naming `name`.
fn not_found_naming(e: &AgentError, name: &str) -> Result<(), String> {
    not_a_crash(e)?;
    if e.class != ErrorClass::NotFound {
        return Err(format!("expected NOT_FOUND, got {}", describe_error(e)));
    }
    if !e.message.contains(name) {
        return Err(format!("the message does not name {name:?}: {}", describe_error(e)));
    }
    Ok(())
}

pub(crate) async fn unknown_task_type(s: &Session) -> CheckResult {
    let mut r = result(UNKNOWN_TASK_TYPE);
    let unknown = format!("{}-tern-conformance-unknown", s.task_type());
    let with_type = |name: &str, version: i32| {
        let mut spec = s.case.success.clone();
        spec.template.r#type = name.to_owned();
        spec.template.task_type_version = version;
        spec
    };
    let other_version = s.category.version.wrapping_add(1000);
    let cases = [
        (with_type(&unknown, s.category.version), unknown.as_str(), "an unknown task type"),
        (with_type(s.task_type(), other_version), s.task_type(), "an unknown version of this task type"),
    ];
    for (spec, name, what) in &cases {
        match s.create(spec, "unknown-type", 0).await {
            Ok(_) => r.fail(format!("CreateTask with {what} returned a handle")),
            Err(e) => {
                if let Err(why) = not_found_naming(&e, name) {
                    r.fail(format!("CreateTask with {what}: {why}"));
                }
            }
        }
        match s.execute(spec, "unknown-type").await {
            Ok(res) => r.fail(format!("ExecuteTaskSync with {what} answered {}", describe_resource(&res))),
            Err(e) => {
                if let Err(why) = not_found_naming(&e, name) {
                    r.fail(format!("ExecuteTaskSync with {what}: {why}"));
                }
            }
        }
    }
    let real_category = s.category.clone();
    let probe_session = Session {
        client: s.client.clone(),
        case: s.case.clone(),
        category: admin::TaskCategory { name: unknown.clone(), version: real_category.version },
        run: s.run.clone(),
        is_sync: s.is_sync,
    };
    match probe_session.get(br#"{"v":1}"#, &s.prefix("unknown-type", 0)).await {
        Ok(res) => r.fail(format!("GetTask for an unknown task type answered {}", describe_resource(&res))),
        Err(e) => {
            if let Err(why) = not_found_naming(&e, &unknown) {
                r.fail(format!("GetTask for an unknown task type: {why}"));
            }
        }
    }
    match probe_session.delete(br#"{"v":1}"#).await {
        Ok(()) => r.fail("DeleteTask for an unknown task type answered OK"),
        Err(e) => {
            if let Err(why) = not_found_naming(&e, &unknown) {
                r.fail(format!("DeleteTask for an unknown task type: {why}"));
            }
        }
    }
    r.note(format!("asked for {unknown:?} and for {:?} version {other_version} through CreateTask, ExecuteTaskSync, GetTask and DeleteTask", s.task_type()));
    r
}

pub(crate) async fn backend_states(s: &Session) -> CheckResult {
    let mut r = result(BACKEND_STATES);
    let declared: Option<StateTable> = s.case.agent.as_ref().and_then(|a| a.backend_states().copied());
    let table = match (&s.case.states, declared) {
        (StatesDecl::Table(t), d) => {
            if let Some(d) = d {
                let same = d.states().eq(t.states());
                r.require(same, || format!("the case's table differs from the one the agent declares: {t} vs {d}"));
            }
            *t
        }
        (StatesDecl::None(reason), Some(d)) => {
            r.fail(format!("the case says the agent has no backend states ({reason}), but it declares {} ({d})", d.len()));
            d
        }
        (StatesDecl::None(reason), None) => return r.skip(format!("no backend states: {reason}")),
        (StatesDecl::Unsaid, Some(d)) => d,
        (StatesDecl::Unsaid, None) => {
            r.fail(if s.case.agent.is_some() {
                "the agent declares no backend states (backend_states() is None) and the case does not say why: declare its StateTable, or call Case::no_backend_states(reason)".to_owned()
            } else {
                "the case says nothing about backend states: give the agent (Case::agent), its table (Case::states) or the reason it has none (Case::no_backend_states)".to_owned()
            });
            return r;
        }
    };
    r.require(!table.is_empty(), || format!("the state table of {:?} declares no states", table.agent()));
    for problem in table.problems() {
        r.fail(problem);
    }
    let unknown = table.classify(UNDECLARED_STATE_PROBE);
    r.require(
        unknown.phase == Phase::RetryableFailed
            && unknown.error.as_ref().is_some_and(|e| e.code == codes::UNKNOWN_BACKEND_STATE)
            && unknown.message.contains(UNDECLARED_STATE_PROBE),
        || format!("the table classifies an undeclared state as {:?}", unknown),
    );
    r.note(format!("{} declared states ({table})", table.len()));
    let Some(drive) = &s.case.drive_state else {
        r.note("not exercised end to end: give Case::drive_state (an emulator reporting a chosen state) so GetTask's mapping is checked, not only the table");
        return r;
    };
    if s.is_sync {
        r.note("sync agent: the backend is not driven through states (there is no GetTask)");
        return r;
    }
    let mut driven: Vec<(String, Option<Phase>)> = table.states().map(|st| (st.name.to_owned(), Some(st.phase))).collect();
    driven.push((UNDECLARED_STATE_PROBE.to_owned(), None));
    for (i, (state, want)) in driven.iter().enumerate() {
        drive(state.clone()).await;
        let node = format!("state-{i}");
        let h = match s.create(&s.case.success, &node, 0).await {
            Ok(h) => h,
            Err(e) => {
                r.fail(format!("with the backend in state {state:?}, CreateTask failed: {}", describe_error(&e)));
                continue;
            }
        };
        match (s.get(&h.meta, &h.prefix).await, want) {
            (Ok(res), Some(want)) => {
                r.require(phase_of(&res) == *want, || {
                    format!("backend state {state:?}: GetTask reported {}, the table says {}", describe_resource(&res), want.as_str_name())
                });
            }
            (Ok(res), None) => {
                let code_ok = res.agent_error.as_ref().is_none_or(|e| e.code == codes::UNKNOWN_BACKEND_STATE);
                r.require(phase_of(&res) == Phase::RetryableFailed && res.message.contains(state.as_str()) && code_ok, || {
                    format!(
                        "an undeclared backend state {state:?} must be RETRYABLE_FAILED naming it ({}), got {}",
                        codes::UNKNOWN_BACKEND_STATE,
                        describe_resource(&res)
                    )
                });
            }
            (Err(e), _) => r.fail(format!(
                "backend state {state:?}: GetTask failed: {} (a backend state, known or not, is reported in-band as a phase)",
                describe_error(&e)
            )),
        }
        let _ = s.delete(&h.meta).await;
    }
    r.note(format!("drove the backend through the {} declared states and one undeclared ({UNDECLARED_STATE_PROBE})", table.len()));
    r
}
