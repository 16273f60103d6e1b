//! Long-running operations: both ARM polling styles (`Azure-AsyncOperation` status monitor and
//! `Location` result URL). An operation completes after a configured number of polls; injected
//! faults can make it slower or make it fail. Completion flips the targets' provisioningState.

use crate::error::ArmError;
use crate::faults::FaultKind;
use crate::http::Req;
use crate::state::State;
use crate::store::set_provisioning_deep;
use std::collections::BTreeMap;

/// Which header the initial answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LroStyle {
    /// `Azure-AsyncOperation` → status monitor `{"status": ...}`.
    AsyncOperation,
    /// `Location` → 202 until done, then the final answer.
    Location,
}

/// What the operation does (decides the final answer and the state on completion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LroKind {
    /// Create/update: targets become `Succeeded` (or `Failed`).
    Put,
    /// Delete: targets were already removed; on failure they are kept and marked `Failed`.
    Delete,
}

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct Lro {
    pub kind: LroKind,
    /// Keys of resources whose provisioningState follows this operation; the first is the one
    /// whose body a `Location` poll returns at the end.
    pub targets: Vec<String>,
    pub needed: u32,
    pub polls: u32,
    pub failure: Option<ArmError>,
    pub done: bool,
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

/// Registers the operation and returns the headers for the initial answer.
pub(crate) fn begin(
    state: &mut State,
    req: &Req,
    plan: LroPlan,
    kind: LroKind,
    style: LroStyle,
    provider: &str,
    targets: Vec<String>,
) -> Vec<(String, String)> {
    let id = uuid::Uuid::new_v4().to_string();
    // A newer operation on the same resource supersedes an older one still pending, so the
    // older one cannot flip the state back later.
    for old in state.lros.ops.values_mut() {
        if !old.done && old.targets.iter().any(|t| targets.contains(t)) {
            old.done = true;
        }
    }
    let needed = state.settings.lro_polls.saturating_add(plan.extra_polls);
    state.lros.ops.insert(
        id.clone(),
        Lro {
            kind,
            targets,
            needed,
            polls: 0,
            failure: plan.failure,
            done: false,
        },
    );
    if needed == 0 {
        complete(state, &id);
    }
    let s = &state.settings;
    let version = req.api_version().unwrap_or_default();
    let base = format!(
        "{}/subscriptions/{}/providers/{provider}/locations/{}",
        s.base_url, s.subscription, s.location
    );
    let (name, url) = match style {
        LroStyle::AsyncOperation => (
            "Azure-AsyncOperation",
            format!("{base}/operations/{id}?api-version={version}"),
        ),
        LroStyle::Location => (
            "Location",
            format!("{base}/operationResults/{id}?api-version={version}"),
        ),
    };
    vec![
        (name.to_owned(), url),
        ("Retry-After".to_owned(), s.retry_after.to_string()),
    ]
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
    let op = op.clone();
    let final_state = match (op.kind, &op.failure) {
        (_, Some(_)) => Some("Failed"),
        (LroKind::Put, None) => Some("Succeeded"),
        (LroKind::Delete, None) => None,
    };
    if let Some(ps) = final_state {
        for t in &op.targets {
            if let Some(v) = state.store.get_mut(t) {
                set_provisioning_deep(v, ps);
            }
        }
    }
}
