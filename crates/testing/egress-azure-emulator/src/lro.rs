//! Long-running operations: registration, the first answer in the operation's configured
//! response form (see `forms`), completion after a configured number of polls (faults can make
//! it slower or failed), and the state of the targets (their `provisioningState` follows the
//! operation). The polling endpoints are in `resources::operations`.

use crate::error::ArmError;
use crate::faults::FaultKind;
use crate::forms::{self, LroClass, LroOperation, ResponseForm};
use crate::http::{Reply, Req};
use crate::ids::{COMPUTE, NETWORK};
use crate::resources::render;
use crate::state::State;
use crate::store::set_provisioning_deep;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct Lro {
    pub class: LroClass,
    /// Keys of resources whose provisioningState follows this operation; the first is the one
    /// whose body a `Location` poll returns at the end.
    pub targets: Vec<String>,
    pub needed: u32,
    pub polls: u32,
    pub failure: Option<ArmError>,
    pub done: bool,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
    /// `polled` form: no monitor URL, so GETs of the first target count as polls.
    pub via_resource: bool,
}

/// All operations ever started (they are small; kept so late polls still answer).
#[derive(Debug, Default)]
pub(crate) struct Lros {
    ops: BTreeMap<String, Lro>,
}

impl Lros {
    /// Operations not yet complete.
    pub fn pending(&self) -> usize {
        self.ops.values().filter(|o| !o.done).count()
    }
}

/// Fault decisions for an operation about to start.
#[derive(Debug, Clone, Default)]
pub(crate) struct LroPlan {
    pub failure: Option<ArmError>,
    pub extra_polls: u32,
}

/// Consults the fault rules for a request that will start an LRO.
pub(crate) fn plan(state: &mut State, req: &Req, operation: &str) -> LroPlan {
    let mut plan = LroPlan::default();
    if let Some(inj) = state.faults.take(&req.method, &req.path, operation, true) {
        match inj.kind {
            FaultKind::SlowLro => plan.extra_polls = inj.rule.extra_polls.unwrap_or(5),
            FaultKind::FailLro => {
                let code = inj
                    .rule
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "InternalOperationError".into());
                plan.failure = Some(ArmError::new(
                    400,
                    &code,
                    format!("The operation '{operation}' failed (injected by the emulator)."),
                ));
            }
            _ => {}
        }
    }
    plan
}

/// What the operation works on and how its first answer starts.
#[derive(Debug, Clone)]
pub(crate) struct Start {
    /// Resources whose provisioningState follows the operation (first: the result of a write).
    pub targets: Vec<String>,
    /// For writes: whether the resource was created (201) rather than updated (200).
    pub created: bool,
}

/// Registers the operation `op` (a name from the `forms` table) and builds its first answer in
/// the configured response form.
pub(crate) fn start(state: &mut State, req: &Req, op: &str, plan: LroPlan, start: Start) -> Reply {
    let Some(spec) = forms::operation(op) else {
        return ArmError::new(
            500,
            "InternalServerError",
            format!("emulator bug: '{op}' is not a long-running operation"),
        )
        .into();
    };
    let form = state.forms.form(spec);
    let id = uuid::Uuid::new_v4().to_string();
    // A newer operation on a resource supersedes an older one still pending, so the older one
    // cannot flip the state back later.
    for old in state.lros.ops.values_mut() {
        if !old.done && old.targets.iter().any(|t| start.targets.contains(t)) {
            old.done = true;
            old.ended = Some(SystemTime::now());
        }
    }
    let failure = plan.failure.clone();
    let needed = match form {
        ResponseForm::Done => 0,
        _ => state.settings.lro_polls.saturating_add(plan.extra_polls),
    };
    let first_target = start.targets.first().cloned();
    state.lros.ops.insert(
        id.clone(),
        Lro {
            class: spec.class,
            targets: start.targets,
            needed,
            polls: 0,
            failure: plan.failure,
            done: false,
            started: SystemTime::now(),
            ended: None,
            via_resource: form == ResponseForm::Polled,
        },
    );
    if needed == 0 {
        complete(state, &id);
        if let Some(f) = failure {
            // Nothing to poll: the failure is the answer.
            return f.into();
        }
    }
    let mut reply = first_answer(state, spec, form, start.created, first_target.as_deref());
    if form != ResponseForm::Done {
        reply = monitor_headers(state, req, spec, form, &id, reply);
    }
    reply
}

fn first_answer(
    state: &State,
    spec: &LroOperation,
    form: ResponseForm,
    created: bool,
    target: Option<&str>,
) -> Reply {
    match spec.class {
        LroClass::Write => {
            let body = target
                .and_then(|t| state.store.get(t))
                .map(|v| render::render(&state.store, v))
                .unwrap_or_default();
            let status = match (form, created) {
                (ResponseForm::Accepted, _) => 202,
                (_, true) => 201,
                (_, false) => 200,
            };
            Reply::json(status, body).with_etag_header()
        }
        LroClass::Delete | LroClass::Action => {
            Reply::empty(if form == ResponseForm::Done { 200 } else { 202 })
        }
    }
}

fn provider(spec: &LroOperation) -> &'static str {
    if spec.name.starts_with("VirtualMachineScaleSet") {
        COMPUTE
    } else {
        NETWORK
    }
}

fn monitor_headers(
    state: &State,
    req: &Req,
    spec: &LroOperation,
    form: ResponseForm,
    id: &str,
    mut reply: Reply,
) -> Reply {
    let s = &state.settings;
    let version = req.api_version().unwrap_or_default();
    let base = format!(
        "{}/subscriptions/{}/providers/{}/locations/{}",
        s.base_url,
        s.subscription,
        provider(spec),
        s.location
    );
    if form.has_async_header() {
        reply = reply.header(
            "Azure-AsyncOperation",
            format!("{base}/operations/{id}?api-version={version}"),
        );
    }
    if form.has_location_header() {
        reply = reply.header(
            "Location",
            format!("{base}/operationResults/{id}?api-version={version}"),
        );
    }
    reply.header("Retry-After", s.retry_after.to_string())
}

/// A GET of the resource `id`: counts as a poll of the pending `polled` operation on it, the
/// way a client of that form watches `provisioningState`.
pub(crate) fn resource_read(state: &mut State, id: &str) {
    let k = crate::ids::key(id);
    let pending: Vec<String> = state
        .lros
        .ops
        .iter()
        .filter(|(_, o)| o.via_resource && !o.done && o.targets.first() == Some(&k))
        .map(|(id, _)| id.clone())
        .collect();
    for op in pending {
        poll(state, &op);
    }
}

/// Counts one poll; completes the operation when enough polls were made. `None` if unknown.
pub(crate) fn poll(state: &mut State, id: &str) -> Option<Lro> {
    let key = id.to_ascii_lowercase();
    let op = state.lros.ops.get_mut(&key)?;
    if !op.done {
        op.polls += 1;
        if op.polls >= op.needed {
            complete(state, &key);
        }
    }
    state.lros.ops.get(&key).cloned()
}

fn complete(state: &mut State, id: &str) {
    let Some(op) = state.lros.ops.get_mut(id) else {
        return;
    };
    op.done = true;
    op.ended = Some(SystemTime::now());
    let op = op.clone();
    let final_state = match (op.class, &op.failure) {
        (_, Some(_)) => Some("Failed"),
        (LroClass::Delete, None) => None,
        (_, None) => Some("Succeeded"),
    };
    if let Some(ps) = final_state {
        for t in &op.targets {
            if let Some(v) = state.store.get_mut(t) {
                set_provisioning_deep(v, ps);
            }
        }
    }
}
