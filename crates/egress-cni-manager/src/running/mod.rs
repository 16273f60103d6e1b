//! Running pods follow their gateway (issue 17 items 1 and 2): adding, changing or removing
//! `kubernetes.azure.com/static-gateway-configuration` on a running pod of this node, a label
//! change or an SGC's `podSelector` change that selects or unselects it, or the gateway it
//! uses appearing or becoming ready, attaches, moves or detaches the pod's
//! tunnel without a restart, each change an Event on the pod (`EgressGatewayAttached`,
//! `EgressGatewayDetached`, `EgressGatewayFailed` with the reason). New pods are not this
//! loop's business: their ADD still builds the tunnel before the pod's first packet.
//!
//! Observe (the plugin's sandbox and tunnel records, the node-local pod cache, the SGCs) →
//! [`plan::plan`] (pure) → [`apply::Attacher`] (per sandbox, under the sandbox's lock, the same
//! steps as ADD) → Events from what apply returned. Runs on every pod or SGC change and every
//! [`RESYNC`]; a failed attach of a sandbox to a gateway is retried after [`BACKOFF`].

pub mod apply;
pub mod plan;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio_util::sync::CancellationToken;

use egress_api::selection::Selectors;
use egress_pod_tunnel::sandbox::SandboxRecord;
use egress_pod_tunnel::tunnel::TunnelSpec;

use crate::gateways::GatewayCache;
use crate::state::{NodeState, PodCache};
use apply::{AttachError, Attached, Attacher, Detached};
use plan::{GatewayState, Observed, Step};

/// Re-plan at least this often (backoffs expire, records written without a pod change).
pub const RESYNC: Duration = Duration::from_secs(10);
/// A failed step of one sandbox is not retried for this long (unless it succeeds meanwhile).
pub const BACKOFF: Duration = Duration::from_secs(10);
/// Sandboxes changed at once. Each step mostly waits (for the gateways to program the new
/// peer, then for the handshake), so the bound is about processes and sockets, not CPU: 200
/// running pods annotated together took 30 s to attach on 4 nodes with 8 at once, most of
/// it queueing (docs/benchmarks.md, "Running pods attached together").
const PARALLEL: usize = 32;

/// Event reasons on the pod.
pub const REASON_ATTACHED: &str = "EgressGatewayAttached";
/// See [`REASON_ATTACHED`].
pub const REASON_DETACHED: &str = "EgressGatewayDetached";
/// See [`REASON_ATTACHED`].
pub const REASON_FAILED: &str = "EgressGatewayFailed";

/// What the loop remembers between passes.
#[derive(Debug, Default)]
struct Memory {
    /// `(container ID, target gateway or "" for detach)` → when it last failed.
    failures: HashMap<(String, String), Instant>,
    /// Container ID → reason last reported for a gateway that cannot take it.
    waits: HashMap<String, String>,
}

/// The attachment loop of one node.
pub struct Attachments {
    /// The plugin's state directory (sandbox and tunnel records).
    pub state_dir: PathBuf,
    /// This node's pods.
    pub cache: PodCache,
    /// The SGCs (their states, and the selectors pods are resolved with).
    pub gateways: GatewayCache,
    /// Readiness (the pod cache must be synced before anything is planned).
    pub state: NodeState,
    /// Carries out the steps.
    pub attacher: Arc<dyn Attacher>,
    /// Client for the Events.
    pub client: kube::Client,
    /// This node's name (the Events' reporting instance).
    pub node: String,
}

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachments")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// `reportingController` of the Events.
pub const REPORTING_CONTROLLER: &str = "egress-cni-manager";
const NORMAL: &str = "Normal";
const WARNING: &str = "Warning";

/// How often [`reap_children`] collects exited children.
pub const REAP_EVERY: Duration = Duration::from_secs(5);

/// Collects the exit status of this process's exited wireguard-go children until cancelled.
/// With the userspace backend an attach starts the pod's wireguard-go daemon, which outlives
/// the call that started it (its own process group, as when the short-lived plugin starts it)
/// and exits when the pod's tunnel goes; unlike the plugin, the manager stays its parent, so
/// without this every such daemon would stay a zombie. Only wireguard-go zombies are
/// collected, each by its PID: the manager also runs short-lived commands (`nft`) whose
/// callers wait for them, and collecting *any* child (`waitpid(-1)`) stole their exit
/// status, failing the attach with "No child processes" (seen with 200 pods attached at
/// once).
pub async fn reap_children(cancel: CancellationToken) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let me = std::process::id();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(REAP_EVERY) => {}
        }
        let zombies = tokio::task::spawn_blocking(move || wireguard_zombies(me))
            .await
            .unwrap_or_default();
        for pid in zombies {
            let pid = nix::unistd::Pid::from_raw(pid);
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(status) => tracing::debug!(?status, "collected an exited wireguard-go"),
                Err(e) => tracing::debug!(%pid, error = %e, "wireguard-go already collected"),
            }
        }
    }
}

/// PIDs of exited (zombie) wireguard-go processes whose parent is `parent`.
fn wireguard_zombies(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                parse_stat(&stat).is_some_and(|(comm, state, ppid)| {
                    comm == "wireguard-go" && state == 'Z' && ppid == parent
                })
            })
        })
        .collect()
}

/// `(comm, state, ppid)` of a `/proc/<pid>/stat` line (`pid (comm) state ppid ...`; the
/// command name may itself hold spaces and parentheses, so it ends at the *last* `)`).
fn parse_stat(stat: &str) -> Option<(&str, char, u32)> {
    let (head, rest) = stat.rsplit_once(") ")?;
    let (_, comm) = head.split_once(" (")?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// Runs the loop until cancelled. Steps run as a pipeline, not in passes: a pod annotated
/// while others attach starts at once (up to [`PARALLEL`] sandboxes in flight), instead of
/// waiting for the slowest step of the pass before it (with 200 pods annotated together on
/// 4 nodes, passes of ~20 steps took 10 s each).
pub async fn run(attachments: Attachments, cancel: CancellationToken) {
    let attachments = &attachments;
    let mut memory = Memory::default();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut steps = FuturesUnordered::new();
    let mut events = FuturesUnordered::new();
    // An Event to write, from a step's outcome (`remember` decided it is worth one).
    let write_event =
        |observed: Arc<Observed>, step: Step, (gateway, event): (String, EventText)| {
            Box::pin(async move {
                attachments
                    .event(&observed, step.sandbox(), &gateway, event)
                    .await;
            }) as futures::future::BoxFuture<'_, ()>
        };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = attachments.cache.changed() => {}
            () = attachments.gateways.changed() => {}
            () = tokio::time::sleep(RESYNC) => {}
            Some((step, outcome, observed)) = steps.next(), if !steps.is_empty() => {
                let (step, observed): (Step, Arc<Observed>) = (step, observed);
                in_flight.remove(&step.sandbox().container_id);
                if let Some(event) = remember(&mut memory, &step, &outcome) {
                    events.push(write_event(observed, step, event));
                }
            }
            // Events are written beside the steps: a slow API server holds nothing back.
            Some(()) = events.next(), if !events.is_empty() => continue,
        }
        if !attachments.state.pods_synced() {
            continue;
        }
        let Some(selectors) = attachments.gateways.selectors() else {
            continue;
        };
        let observed = Arc::new(attachments.observe(selectors, &memory));
        let planned = plan::plan(&observed);
        memory.forget_waits_except(&planned);
        let mut new = Vec::new();
        for step in planned {
            if in_flight.contains(&step.sandbox().container_id) {
                continue;
            }
            if let Step::Wait { reason, .. } = &step {
                // Nothing to carry out: reported once per distinct reason, here, so that a
                // waiting pod never becomes a step that completes at once and re-plans
                // (a busy loop).
                let outcome = Outcome::Waiting {
                    reason: reason.clone(),
                };
                if let Some(event) = remember(&mut memory, &step, &outcome) {
                    events.push(write_event(observed.clone(), step, event));
                }
            } else if in_flight.len() + new.len() < PARALLEL {
                new.push(step);
            }
        }
        if !new.is_empty() {
            tracing::info!(
                new = new.len(),
                in_flight = in_flight.len(),
                "running pods: starting steps"
            );
        }
        for step in new {
            in_flight.insert(step.sandbox().container_id.clone());
            let observed = observed.clone();
            steps.push(async move {
                let outcome = attachments.run_step(&step).await;
                (step, outcome, observed)
            });
        }
    }
}

impl Memory {
    /// Forgets failures past their backoff and the waiting reasons of sandboxes that no
    /// longer wait (so that a new wait is reported again).
    fn forget_waits_except(&mut self, planned: &[Step]) {
        self.failures.retain(|_, at| at.elapsed() < BACKOFF);
        let waiting: HashSet<&str> = planned
            .iter()
            .filter(|s| matches!(s, Step::Wait { .. }))
            .map(|s| s.sandbox().container_id.as_str())
            .collect();
        self.waits.retain(|id, _| waiting.contains(id.as_str()));
    }
}

impl Attachments {
    fn observe(&self, selectors: Arc<Selectors>, memory: &Memory) -> Observed {
        let mut sandboxes = SandboxRecord::list(&self.state_dir).unwrap_or_else(|e| {
            tracing::warn!(dir = %self.state_dir.display(), error = %e, "failed to list sandbox records");
            Vec::new()
        });
        // Locks, records and logs live where this manager told the plugin to keep them,
        // whatever a record says.
        for s in &mut sandboxes {
            s.state_dir = self.state_dir.clone();
        }
        let records: Vec<TunnelSpec> = sandboxes
            .iter()
            .filter_map(|s| match TunnelSpec::load(&self.state_dir, &s.container_id) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(container = %s.container_id, error = %e, "unreadable tunnel record");
                    None
                }
            })
            .collect();
        let tunnels = records
            .iter()
            .map(|t| (t.sandbox.container_id.clone(), t.gateway.clone()))
            .collect();
        let tunnels_ipv6 = records
            .iter()
            .filter(|t| t.ipv6)
            .map(|t| t.sandbox.container_id.clone())
            .collect();
        let sgc_key = |sgc: &egress_api::StaticGatewayConfiguration| {
            (
                sgc.metadata.namespace.clone().unwrap_or_default(),
                sgc.metadata.name.clone().unwrap_or_default(),
            )
        };
        let gateways = self
            .gateways
            .state()
            .iter()
            .map(|sgc| {
                let key = sgc_key(sgc);
                let state = match crate::gateway::to_reply(sgc) {
                    Ok(_) => GatewayState::Ready,
                    Err(e) => GatewayState::NotReady(crate::error_chain(&e)),
                };
                (key, state)
            })
            .collect();
        let sgcs = self.gateways.state();
        let dual_stack = sgcs
            .iter()
            .filter(|sgc| sgc.spec.target.ipv6())
            .map(|sgc| sgc_key(sgc))
            .collect();
        let ipv6_waiting = sgcs
            .iter()
            .filter_map(|sgc| {
                let e = crate::gateway::ipv6_unusable(sgc)?;
                Some((sgc_key(sgc), crate::error_chain(&e)))
            })
            .collect();
        Observed {
            sandboxes,
            tunnels,
            tunnels_ipv6,
            dual_stack,
            ipv6_waiting,
            pods: self.cache.snapshot(),
            selectors,
            gateways,
            backing_off: memory
                .failures
                .iter()
                .filter(|(_, at)| at.elapsed() < BACKOFF)
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    async fn run_step(&self, step: &Step) -> Outcome {
        match step {
            Step::Attach {
                sandbox, gateway, ..
            } => match self.attacher.attach(sandbox).await {
                Ok(Attached::Attached { gateway, handshake }) => {
                    Outcome::Attached { gateway, handshake }
                }
                Ok(Attached::SandboxGone) => Outcome::Nothing,
                Err(error) => Outcome::Failed {
                    target: gateway.clone(),
                    error,
                },
            },
            Step::Detach { sandbox, .. } => match self.attacher.detach(sandbox).await {
                Ok(Detached::Detached { from }) => Outcome::Detached { from },
                Ok(Detached::Nothing) => Outcome::Nothing,
                Err(error) => Outcome::Failed {
                    target: String::new(),
                    error,
                },
            },
            Step::Wait { reason, .. } => Outcome::Waiting {
                reason: reason.clone(),
            },
        }
    }

    /// Creates one Event on the pod (never a series: kube's Recorder folds Events with the
    /// same reason into a series that keeps the first note, and each attach, move or
    /// failure here has its own). `related` names the gateway.
    async fn event(
        &self,
        observed: &Observed,
        sandbox: &SandboxRecord,
        gateway: &str,
        (type_, reason, action, note): (&str, &str, &str, String),
    ) {
        let ns = &sandbox.pod_namespace;
        let key = (ns.clone(), sandbox.pod_name.clone());
        let pod = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(ns.clone()),
            name: Some(sandbox.pod_name.clone()),
            uid: observed.pods.get(&key).map(|p| p.uid.clone()),
            ..ObjectReference::default()
        };
        let sgc = ObjectReference {
            api_version: Some(egress_api::constants::API_VERSION.into()),
            kind: Some("StaticGatewayConfiguration".into()),
            namespace: Some(ns.clone()),
            name: Some(gateway.to_owned()),
            ..ObjectReference::default()
        };
        tracing::info!(pod = %sandbox.pod(), reason, "{note}");
        let now = k8s_openapi::jiff::Timestamp::now();
        let event = K8sEvent {
            metadata: ObjectMeta {
                namespace: Some(ns.clone()),
                name: Some(format!("{}.{:x}", sandbox.pod_name, now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            note: Some(note),
            regarding: Some(pod),
            related: Some(sgc),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(self.node.clone()),
            ..K8sEvent::default()
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(pod = %sandbox.pod(), error = %e, reason, "failed to publish event");
        }
    }
}

/// What one step came to.
#[derive(Debug)]
enum Outcome {
    Attached {
        gateway: String,
        handshake: Duration,
    },
    Detached {
        from: String,
    },
    Failed {
        target: String,
        error: AttachError,
    },
    Waiting {
        reason: String,
    },
    Nothing,
}

/// An Event: type, reason, action, note.
type EventText = (&'static str, &'static str, &'static str, String);

/// The gateway a step's outcome is about and its Event.
/// Records a step's outcome in `memory` (failures back off, a waiting reason is reported
/// once) and returns the Event to write, if any.
fn remember(memory: &mut Memory, step: &Step, outcome: &Outcome) -> Option<(String, EventText)> {
    let id = step.sandbox().container_id.clone();
    if let Outcome::Failed { target, .. } = outcome {
        memory
            .failures
            .insert((id.clone(), target.clone()), Instant::now());
    }
    if let Outcome::Waiting { reason } = outcome {
        if memory.waits.get(&id) == Some(reason) {
            return None;
        }
        memory.waits.insert(id, reason.clone());
    }
    event_of(step, outcome)
}

fn event_of(step: &Step, outcome: &Outcome) -> Option<(String, EventText)> {
    let ns = &step.sandbox().pod_namespace;
    let about = match (step, outcome) {
        (_, Outcome::Attached { gateway, .. })
        | (Step::Attach { gateway, .. } | Step::Wait { gateway, .. }, _) => gateway,
        (_, Outcome::Detached { from }) | (Step::Detach { from, .. }, _) => from,
    };
    let text = match (step, outcome) {
        (Step::Attach { from, .. }, Outcome::Attached { gateway, handshake }) => Some((
            NORMAL,
            REASON_ATTACHED,
            "Attach",
            match from {
                Some(old) if old == gateway => format!(
                    "re-attached to StaticGatewayConfiguration {ns}/{gateway} because its IPv6 egress (spec.ipFamilies) changed (first handshake after {} ms); connections opened before break",
                    handshake.as_millis()
                ),
                Some(old) => format!(
                    "moved from StaticGatewayConfiguration {ns}/{old} to {ns}/{gateway} (first handshake after {} ms); connections opened before use the old egress IP and break",
                    handshake.as_millis()
                ),
                None => format!(
                    "attached to StaticGatewayConfiguration {ns}/{gateway} (first handshake after {} ms); connections opened before leave with the old source IP and break",
                    handshake.as_millis()
                ),
            },
        )),
        (Step::Detach { .. }, Outcome::Detached { from }) => Some((
            NORMAL,
            REASON_DETACHED,
            "Detach",
            format!(
                "detached from StaticGatewayConfiguration {ns}/{from}: the pod egresses as a pod without a gateway"
            ),
        )),
        (Step::Attach { from, gateway, .. }, Outcome::Failed { error, .. }) => Some((
            WARNING,
            REASON_FAILED,
            "Attach",
            format!(
                "failed to attach to StaticGatewayConfiguration {ns}/{gateway}: {}; {} (retried in {} s)",
                crate::error_chain(error),
                match from {
                    Some(old) => format!(
                        "its tunnel to {ns}/{old} was removed, so the pod egresses as a pod without a gateway"
                    ),
                    None => "the pod egresses as before".to_owned(),
                },
                BACKOFF.as_secs()
            ),
        )),
        (Step::Detach { from, .. }, Outcome::Failed { error, .. }) => Some((
            WARNING,
            REASON_FAILED,
            "Detach",
            format!(
                "failed to detach from StaticGatewayConfiguration {ns}/{from}: {}",
                crate::error_chain(error)
            ),
        )),
        (Step::Wait { gateway, from, .. }, Outcome::Waiting { reason }) => Some((
            WARNING,
            REASON_FAILED,
            "Attach",
            format!(
                "cannot attach to StaticGatewayConfiguration {ns}/{gateway} yet: {reason}; {}",
                match from {
                    Some(old) => format!(
                        "the pod keeps its tunnel to {ns}/{old}, whose gateways no longer accept it: no egress until this is resolved"
                    ),
                    None => "the pod egresses as before".to_owned(),
                }
            ),
        )),
        _ => None,
    }?;
    Some((about.clone(), text))
}

#[cfg(test)]
#[path = "reap_tests.rs"]
mod tests;
