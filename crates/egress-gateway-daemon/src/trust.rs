//! Whether a PodEndpoint may speak for a pod (pure; the threat model is in docs/design.md).
//!
//! A PodEndpoint is used only when all of these hold, each checked against facts that the
//! writer of the PodEndpoint does not control:
//!
//! 1. its controlling owner reference (`controller: true`) is a `v1` Pod with the PodEndpoint's
//!    own name (the CNI manager names it after the pod, so there is at most one per pod);
//! 2. that Pod exists in the same namespace with the referenced UID and has not finished;
//! 3. the Pod uses the PodEndpoint's StaticGatewayConfiguration by the one rule of
//!    `egress_api::selection`: its annotation names it, or (not annotated) that SGC's
//!    `podSelector` is the only one of the pod's namespace matching its labels. A pod that
//!    selectors of two SGCs match uses neither, and a label can never reach an SGC of another
//!    namespace (the PodEndpoint, its pod and the SGC share one namespace);
//! 4. the PodEndpoint's node label equals the Pod's `spec.nodeName` (the chart's admission
//!    policy binds the label to the node of the CNI manager that wrote it);
//! 5. `podIpAddress` is one of the Pod's `status.podIPs`, or the Pod has no IP yet (the kubelet
//!    reports it only after CNI ADD, which waits for this very peer).
//!
//! What passes is a [`Standing`]: how strong the claim is when two claims want the same IP or
//! key (`placement` decides that). What fails is a [`Refusal`] with the exact reason.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use egress_api::PodEndpoint;
use egress_api::constants::{POD_ANNOTATION, POD_ENDPOINT_NODE_LABEL};
use egress_api::selection::{Choice, Selectors};
use ipnet::IpNet;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::pods::PodFacts;
use crate::translate::ObjectKey;

/// How strong a valid claim is. Compared field by field, "smaller" wins (see `placement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The pod is being deleted: it keeps its slot only while no live pod wants it.
    pub terminating: bool,
    /// The pod has no IP in its status yet (CNI ADD in progress).
    pub provisional: bool,
    /// The pod's creation time (API server clock).
    pub pod_created: Option<Timestamp>,
    /// The pod's UID (a total order where creation times tie).
    pub pod_uid: String,
}

/// Why a PodEndpoint is refused. Each variant is one value of the metric label `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No controlling owner reference to a Pod.
    NotOwned,
    /// The controlling Pod has another name than the PodEndpoint.
    OwnerName {
        /// Name in the owner reference.
        owner: String,
    },
    /// The owner Pod does not exist (or has finished).
    PodMissing {
        /// The Pod looked for.
        pod: ObjectKey,
    },
    /// The owner reference names an earlier Pod of that name.
    PodUid {
        /// The Pod.
        pod: ObjectKey,
        /// UID in the owner reference.
        owner_uid: String,
        /// UID of the Pod now.
        pod_uid: String,
    },
    /// The Pod does not use this SGC: neither its annotation names it nor its `podSelector`
    /// alone selects the Pod (metric label `not_annotated`, as before selectors).
    NotAnnotated {
        /// The Pod.
        pod: ObjectKey,
        /// The SGC the PodEndpoint names.
        sgc: String,
        /// What the Pod uses instead.
        actual: Choice,
    },
    /// The node label differs from the Pod's node.
    WrongNode {
        /// The Pod.
        pod: ObjectKey,
        /// The PodEndpoint's node label, if any.
        label: Option<String>,
        /// The Pod's `spec.nodeName`, if scheduled.
        node: Option<String>,
    },
    /// The IP is not the Pod's.
    IpNotPods {
        /// The Pod.
        pod: ObjectKey,
        /// The claimed IP.
        ip: IpNet,
        /// The Pod's IPs.
        pod_ips: BTreeSet<IpAddr>,
    },
    /// A stronger (or incumbent) claim holds the IP.
    IpTaken {
        /// The claimed IP.
        ip: IpNet,
        /// The PodEndpoint holding it.
        holder: ObjectKey,
    },
    /// A stronger (or incumbent) claim holds the public key on this tunnel.
    KeyTaken {
        /// The PodEndpoint holding it.
        holder: ObjectKey,
        /// The tunnel interface.
        interface: String,
    },
}

impl Refusal {
    /// Every metric label, registered at zero when the daemon starts.
    pub const REASONS: [&'static str; 9] = [
        "not_owned",
        "owner_name",
        "pod_missing",
        "pod_uid",
        "not_annotated",
        "wrong_node",
        "ip_not_pods",
        "ip_taken",
        "key_taken",
    ];

    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotOwned => "not_owned",
            Refusal::OwnerName { .. } => "owner_name",
            Refusal::PodMissing { .. } => "pod_missing",
            Refusal::PodUid { .. } => "pod_uid",
            Refusal::NotAnnotated { .. } => "not_annotated",
            Refusal::WrongNode { .. } => "wrong_node",
            Refusal::IpNotPods { .. } => "ip_not_pods",
            Refusal::IpTaken { .. } => "ip_taken",
            Refusal::KeyTaken { .. } => "key_taken",
        }
    }

    /// True when the pod watch may simply not have delivered the pod (or its re-creation)
    /// yet: such a refusal is published at the next full cycle, not at the event, so a
    /// PodEndpoint that arrives a moment before its pod causes no false alarm.
    pub fn may_be_watch_lag(&self) -> bool {
        matches!(self, Refusal::PodMissing { .. } | Refusal::PodUid { .. })
    }

    /// True for a clash with another valid claim, which may resolve when that one goes.
    pub fn is_contention(&self) -> bool {
        matches!(self, Refusal::IpTaken { .. } | Refusal::KeyTaken { .. })
    }
}

fn show(v: Option<&String>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotOwned => f.write_str(
                "it has no controller owner reference to a v1 Pod (the CNI manager writes every PodEndpoint owned by its pod)",
            ),
            Refusal::OwnerName { owner } => write!(
                f,
                "its controller owner is pod {owner:?}, not the pod of the same name (the CNI manager names a PodEndpoint after its pod)"
            ),
            Refusal::PodMissing { pod } => {
                write!(f, "its pod {pod} does not exist or has finished")
            }
            Refusal::PodUid {
                pod,
                owner_uid,
                pod_uid,
            } => write!(
                f,
                "it is owned by pod UID {owner_uid} but pod {pod} has UID {pod_uid} (it belongs to an earlier pod of that name)"
            ),
            Refusal::NotAnnotated { pod, sgc, actual } => {
                write!(
                    f,
                    "pod {pod} does not use StaticGatewayConfiguration {sgc:?}: "
                )?;
                match actual {
                    Choice::Annotation(other) => {
                        write!(f, "its {POD_ANNOTATION} annotation names {other:?}")
                    }
                    Choice::Selector(other) => write!(
                        f,
                        "it has no {POD_ANNOTATION} annotation and the podSelector of {other:?} selects it"
                    ),
                    Choice::Conflict(names) => write!(
                        f,
                        "it has no {POD_ANNOTATION} annotation and the podSelectors of {} all select it, so it uses none of them",
                        names.join(", ")
                    ),
                    Choice::None => write!(
                        f,
                        "it has no {POD_ANNOTATION} annotation and no podSelector selects it"
                    ),
                }
            }
            Refusal::WrongNode { pod, label, node } => write!(
                f,
                "its {POD_ENDPOINT_NODE_LABEL} label is {} but pod {pod} runs on node {} (only the CNI manager of the pod's node may write it)",
                show(label.as_ref()),
                show(node.as_ref())
            ),
            Refusal::IpNotPods { pod, ip, pod_ips } => write!(
                f,
                "spec.podIpAddress {ip} is not an IP of pod {pod} (status.podIPs: {pod_ips:?})"
            ),
            Refusal::IpTaken { ip, holder } => write!(
                f,
                "spec.podIpAddress {ip} is already held by PodEndpoint {holder}"
            ),
            Refusal::KeyTaken { holder, interface } => write!(
                f,
                "its spec.podPublicKey is already held by PodEndpoint {holder} on {interface}"
            ),
        }
    }
}

/// Checks a PodEndpoint claiming `ip` against its owner pod (`pod`: the Pod with the
/// PodEndpoint's namespace and name, if the watch has it) and the `podSelector`s of every SGC.
pub fn check(
    pe: &PodEndpoint,
    sgc: &str,
    ip: IpNet,
    pod: Option<&PodFacts>,
    selectors: &Selectors,
) -> Result<Standing, Refusal> {
    let key = ObjectKey::of(pe);
    let owner = pe
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .filter(|o| o.api_version == "v1" && o.kind == "Pod")
        .ok_or(Refusal::NotOwned)?;
    if owner.name != key.name {
        return Err(Refusal::OwnerName {
            owner: owner.name.clone(),
        });
    }
    let pod = pod
        .filter(|p| !p.finished)
        .ok_or_else(|| Refusal::PodMissing { pod: key.clone() })?;
    if owner.uid != pod.uid {
        return Err(Refusal::PodUid {
            pod: key,
            owner_uid: owner.uid.clone(),
            pod_uid: pod.uid.clone(),
        });
    }
    let choice = selectors.choose(&key.namespace, &pod.labels, pod.annotation.as_deref());
    if choice.gateway() != Some(sgc) {
        return Err(Refusal::NotAnnotated {
            pod: key,
            sgc: sgc.to_owned(),
            actual: choice,
        });
    }
    let label = pe.labels().get(POD_ENDPOINT_NODE_LABEL);
    if pod.node_name.is_none() || label != pod.node_name.as_ref() {
        return Err(Refusal::WrongNode {
            pod: key,
            label: label.cloned(),
            node: pod.node_name.clone(),
        });
    }
    let provisional = pod.ips.is_empty();
    if !provisional && !pod.ips.contains(&ip.addr()) {
        return Err(Refusal::IpNotPods {
            pod: key,
            ip,
            pod_ips: pod.ips.clone(),
        });
    }
    Ok(Standing {
        terminating: pod.terminating,
        provisional,
        pod_created: pod.created,
        pod_uid: pod.uid.clone(),
    })
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
