//! The pure part of attaching running pods: for every sandbox the plugin recorded on this
//! node, the gateway its pod should use now (its annotation, or the one `podSelector` selecting
//! it: `egress_api::selection`) against the gateway its tunnel uses (the tunnel record), giving
//! one [`Step`] per sandbox that differs. A pod that two or more selectors match uses none of
//! them: it is handled as a pod whose gateway cannot take it (a [`Step::Wait`]: a tunnel it has
//! stays, refused by its gateways, so it has no egress rather than the node's; a pod without
//! one egresses as before), until the conflict is resolved. Only sandboxes
//! that are their pod's current one are considered: the pod is in the node-local cache, has
//! the recorded UID, is neither finished nor being deleted, and the API reports the
//! sandbox's IP as the pod's (the kubelet reports it only after a successful ADD, so a
//! sandbox whose ADD is still running or failed is never touched here).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use egress_api::selection::{Choice, Selectors};

use egress_pod_tunnel::sandbox::SandboxRecord;

use crate::state::{PodFacts, PodKey};

/// Whether a gateway can take a pod now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayState {
    /// Provisioned: an attach can register and handshake.
    Ready,
    /// Exists but cannot serve pods (yet): the reason, as ADD would give it.
    NotReady(String),
}

/// What the plan reads.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// The plugin's sandbox records.
    pub sandboxes: Vec<SandboxRecord>,
    /// Gateway of each sandbox's tunnel, by container ID (from the tunnel records).
    pub tunnels: BTreeMap<String, String>,
    /// This node's pods.
    pub pods: HashMap<PodKey, PodFacts>,
    /// The `podSelector`s of every namespace.
    pub selectors: Arc<Selectors>,
    /// SGCs by `(namespace, name)`; absent: does not exist.
    pub gateways: HashMap<(String, String), GatewayState>,
    /// `(container ID, gateway)` pairs whose attach failed recently (gateway `""`: detach):
    /// not retried yet.
    pub backing_off: HashSet<(String, String)>,
    /// Container IDs whose tunnel routes IPv6 too (the tunnel record's `ipv6`).
    pub tunnels_ipv6: HashSet<String>,
    /// SGCs by `(namespace, name)` with IPv6 in `spec.ipFamilies`.
    pub dual_stack: HashSet<(String, String)>,
    /// Dual-stack SGCs ready for pods without IPv6 but not yet for pods with it: the reason.
    pub ipv6_waiting: HashMap<(String, String), String>,
}

/// One change to one running sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Build a tunnel to `gateway` (replacing the one to `from`, if any).
    Attach {
        /// The sandbox.
        sandbox: SandboxRecord,
        /// Gateway to use.
        gateway: String,
        /// Gateway of the tunnel being replaced.
        from: Option<String>,
    },
    /// Remove the tunnel (the annotation went).
    Detach {
        /// The sandbox.
        sandbox: SandboxRecord,
        /// Gateway of the tunnel.
        from: String,
    },
    /// The pod names a gateway that cannot take it now, or selectors conflict over it; its
    /// tunnel (if any) stays.
    Wait {
        /// The sandbox.
        sandbox: SandboxRecord,
        /// Gateway named (for a conflict: the one its tunnel uses if among them, else the
        /// first by name).
        gateway: String,
        /// Gateway of the tunnel it keeps meanwhile (whose gateways stop accepting the pod
        /// as soon as its annotation names another).
        from: Option<String>,
        /// Why it cannot be used.
        reason: String,
    },
}

impl Step {
    /// The sandbox the step is about.
    pub fn sandbox(&self) -> &SandboxRecord {
        match self {
            Step::Attach { sandbox, .. }
            | Step::Detach { sandbox, .. }
            | Step::Wait { sandbox, .. } => sandbox,
        }
    }
}

/// The pod of `sandbox` when the sandbox is that pod's running one.
fn current_pod<'a>(observed: &'a Observed, sandbox: &SandboxRecord) -> Option<&'a PodFacts> {
    let pod = observed
        .pods
        .get(&(sandbox.pod_namespace.clone(), sandbox.pod_name.clone()))?;
    let uid_ok = sandbox.pod_uid.as_ref().is_none_or(|u| *u == pod.uid);
    let running = !pod.finished && !pod.deleting;
    let ip_ok = pod.ips.contains(&IpAddr::V4(sandbox.pod_ip));
    (uid_ok && running && ip_ok).then_some(pod)
}

/// The steps that bring every running sandbox to its pod's gateway.
pub fn plan(observed: &Observed) -> Vec<Step> {
    observed
        .sandboxes
        .iter()
        .filter_map(|sandbox| {
            let pod = current_pod(observed, sandbox)?;
            let current = observed.tunnels.get(&sandbox.container_id);
            let choice = pod.choice(&sandbox.pod_namespace, &observed.selectors);
            if let (Some(reason), Choice::Conflict(names)) =
                (choice.conflict_reason(&sandbox.pod_namespace), &choice)
            {
                return Some(conflict(sandbox, current, names, reason));
            }
            match (choice.gateway(), current) {
                (None, None) => None,
                (Some(want), Some(have)) if want == have => ipv6_changed(observed, sandbox, want),
                (None, Some(have)) => (!observed
                    .backing_off
                    .contains(&(sandbox.container_id.clone(), String::new())))
                .then(|| Step::Detach {
                    sandbox: sandbox.clone(),
                    from: have.clone(),
                }),
                (Some(want), have) => towards(observed, sandbox, want, have),
            }
        })
        .collect()
}

/// The pod's tunnel to its own gateway is rebuilt when the gateway gained or lost IPv6 (or
/// the tunnel predates it): a tunnel's IPv6 routes and the PodEndpoint's `podIpv6Address`
/// are set at attach, so only a new attach changes them. Only to a ready gateway, and not
/// while a recent attempt backs off; a gateway still provisioning its IPv6 leaves the tunnel
/// as it is (its IPv4 keeps working).
fn ipv6_changed(observed: &Observed, sandbox: &SandboxRecord, gateway: &str) -> Option<Step> {
    let key = (sandbox.pod_namespace.clone(), gateway.to_owned());
    let want = observed.dual_stack.contains(&key) && sandbox.pod_ipv6.is_some();
    let have = observed.tunnels_ipv6.contains(&sandbox.container_id);
    let ready = observed.gateways.get(&key) == Some(&GatewayState::Ready)
        && !(want && observed.ipv6_waiting.contains_key(&key));
    let backing_off = observed
        .backing_off
        .contains(&(sandbox.container_id.clone(), gateway.to_owned()));
    (want != have && ready && !backing_off).then(|| Step::Attach {
        sandbox: sandbox.clone(),
        gateway: gateway.to_owned(),
        from: Some(gateway.to_owned()),
    })
}

/// Selectors conflict over the pod: it waits, keeping any tunnel (its gateways refuse it). The
/// Event is about the SGC of its tunnel if that is one of them, else the first by name.
fn conflict(
    sandbox: &SandboxRecord,
    current: Option<&String>,
    names: &[String],
    reason: String,
) -> Step {
    let gateway = current
        .filter(|c| names.contains(c))
        .or(names.first())
        .cloned()
        .unwrap_or_default();
    Step::Wait {
        sandbox: sandbox.clone(),
        gateway,
        from: current.cloned(),
        reason,
    }
}

/// The step towards gateway `want` from the tunnel to `have` (if any): attach when `want` is
/// ready (unless it failed recently), wait with the reason otherwise.
fn towards(
    observed: &Observed,
    sandbox: &SandboxRecord,
    want: &str,
    have: Option<&String>,
) -> Option<Step> {
    let key = (sandbox.pod_namespace.clone(), want.to_owned());
    let wait = |reason: String| Step::Wait {
        sandbox: sandbox.clone(),
        gateway: want.to_owned(),
        from: have.cloned(),
        reason,
    };
    let ipv6_waiting = sandbox
        .pod_ipv6
        .and_then(|_| observed.ipv6_waiting.get(&key));
    match observed.gateways.get(&key) {
        // A pod with IPv6 waits for the gateway's IPv6 as ADD would make it.
        Some(GatewayState::Ready) if let Some(reason) = ipv6_waiting => Some(wait(reason.clone())),
        Some(GatewayState::Ready) => (!observed
            .backing_off
            .contains(&(sandbox.container_id.clone(), want.to_owned())))
        .then(|| Step::Attach {
            sandbox: sandbox.clone(),
            gateway: want.to_owned(),
            from: have.cloned(),
        }),
        Some(GatewayState::NotReady(reason)) => Some(wait(reason.clone())),
        None => Some(wait(format!(
            "StaticGatewayConfiguration {}/{want} does not exist",
            sandbox.pod_namespace
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use egress_cni_proto::Backend;

    fn sandbox(id: &str, pod: &str, ip: &str) -> SandboxRecord {
        SandboxRecord {
            container_id: id.into(),
            netns: format!("/run/netns/{id}").into(),
            eth: "eth0".into(),
            pod_ip: ip.parse().unwrap(),
            eth_gateway: "10.244.0.1".parse().unwrap(),
            pod_ipv6: None,
            eth_ipv6_gateway: None,
            mtu: 1420,
            backend: Backend::Kernel,
            node_excluded_cidrs: vec![],
            state_dir: "/run/egress-gateway/pods".into(),
            pod_namespace: "ns".into(),
            pod_name: pod.into(),
            pod_uid: Some(format!("uid-{pod}")),
        }
    }

    fn pod(name: &str, ip: &str, gateway: Option<&str>) -> (PodKey, PodFacts) {
        (
            ("ns".into(), name.into()),
            PodFacts {
                uid: format!("uid-{name}"),
                node_name: Some("node-1".into()),
                annotation: gateway.map(Into::into),
                labels: BTreeMap::new(),
                ips: vec![ip.parse().unwrap()],
                finished: false,
                deleting: false,
            },
        )
    }

    fn world() -> Observed {
        Observed {
            sandboxes: vec![sandbox("c1", "p1", "10.244.0.5")],
            pods: [pod("p1", "10.244.0.5", Some("gw"))].into(),
            gateways: [(("ns".into(), "gw".into()), GatewayState::Ready)].into(),
            ..Observed::default()
        }
    }

    #[test]
    fn an_annotated_running_pod_without_a_tunnel_is_attached() {
        let o = world();
        assert_eq!(
            plan(&o),
            [Step::Attach {
                sandbox: o.sandboxes[0].clone(),
                gateway: "gw".into(),
                from: None
            }]
        );
    }

    #[test]
    fn a_pod_already_on_its_gateway_needs_nothing() {
        let mut o = world();
        o.tunnels.insert("c1".into(), "gw".into());
        assert_eq!(plan(&o), []);
    }

    #[test]
    fn a_gateway_gaining_or_losing_ipv6_re_attaches_its_dual_stack_pods() {
        let mut o = world();
        o.tunnels.insert("c1".into(), "gw".into());
        let gw = ("ns".to_owned(), "gw".to_owned());
        o.dual_stack.insert(gw.clone());
        // An IPv4-only pod: nothing to change.
        assert_eq!(plan(&o), []);
        o.sandboxes[0].pod_ipv6 = Some("fd00:10:244::5".parse().unwrap());
        let again = Step::Attach {
            sandbox: o.sandboxes[0].clone(),
            gateway: "gw".into(),
            from: Some("gw".into()),
        };
        assert_eq!(plan(&o), std::slice::from_ref(&again));
        // Not while the gateway provisions its IPv6, nor while a retry backs off.
        o.ipv6_waiting
            .insert(gw.clone(), "no IPv6 prefix yet".into());
        assert_eq!(plan(&o), []);
        // Attaching anew, a pod with IPv6 waits for it, with the reason.
        o.tunnels.clear();
        assert!(
            matches!(&plan(&o)[..], [Step::Wait { reason, from: None, .. }] if reason == "no IPv6 prefix yet")
        );
        o.tunnels.insert("c1".into(), "gw".into());
        o.ipv6_waiting.clear();
        o.backing_off.insert(("c1".into(), "gw".into()));
        assert_eq!(plan(&o), []);
        o.backing_off.clear();
        // Re-attached with IPv6: done; IPv6 removed from the gateway: back to IPv4 only.
        o.tunnels_ipv6.insert("c1".into());
        assert_eq!(plan(&o), []);
        o.dual_stack.clear();
        assert_eq!(plan(&o), [again]);
    }

    #[test]
    fn a_changed_annotation_moves_and_a_removed_one_detaches() {
        let mut o = world();
        o.tunnels.insert("c1".into(), "old".into());
        assert_eq!(
            plan(&o),
            [Step::Attach {
                sandbox: o.sandboxes[0].clone(),
                gateway: "gw".into(),
                from: Some("old".into())
            }]
        );
        o.pods = [pod("p1", "10.244.0.5", None)].into();
        assert_eq!(
            plan(&o),
            [Step::Detach {
                sandbox: o.sandboxes[0].clone(),
                from: "old".into()
            }]
        );
    }

    #[test]
    fn a_missing_or_unready_gateway_waits_with_the_reason_and_keeps_the_tunnel() {
        let mut o = world();
        o.gateways.clear();
        let Step::Wait { reason, .. } = &plan(&o)[0] else {
            panic!("{:?}", plan(&o))
        };
        assert_eq!(reason, "StaticGatewayConfiguration ns/gw does not exist");
        o.gateways.insert(
            ("ns".into(), "gw".into()),
            GatewayState::NotReady("pool not found".into()),
        );
        o.tunnels.insert("c1".into(), "old".into());
        assert_eq!(
            plan(&o),
            [Step::Wait {
                sandbox: o.sandboxes[0].clone(),
                gateway: "gw".into(),
                from: Some("old".into()),
                reason: "pool not found".into()
            }]
        );
    }

    #[test]
    fn the_gateway_is_looked_up_in_the_pods_own_namespace() {
        let mut o = world();
        o.gateways = [(("other".into(), "gw".into()), GatewayState::Ready)].into();
        assert!(matches!(plan(&o)[..], [Step::Wait { .. }]));
    }

    #[test]
    fn only_a_pods_current_running_sandbox_is_touched() {
        let base = world();
        type Change = Box<dyn Fn(&mut Observed)>;
        let cases: Vec<(&str, Change)> = vec![
            ("pod gone", Box::new(|o| o.pods.clear())),
            (
                "pod re-created under the same name",
                Box::new(|o| o.pods.get_mut(&("ns".into(), "p1".into())).unwrap().uid = "x".into()),
            ),
            (
                "sandbox IP is not the pod's (ADD not finished, or an older sandbox)",
                Box::new(|o| {
                    o.pods.get_mut(&("ns".into(), "p1".into())).unwrap().ips =
                        vec!["10.244.0.6".parse().unwrap()]
                }),
            ),
            (
                "pod being deleted",
                Box::new(|o| {
                    o.pods
                        .get_mut(&("ns".into(), "p1".into()))
                        .unwrap()
                        .deleting = true
                }),
            ),
            (
                "pod finished",
                Box::new(|o| {
                    o.pods
                        .get_mut(&("ns".into(), "p1".into()))
                        .unwrap()
                        .finished = true
                }),
            ),
            (
                "recent failure for this gateway",
                Box::new(|o| {
                    o.backing_off.insert(("c1".into(), "gw".into()));
                }),
            ),
        ];
        for (what, change) in cases {
            let mut o = base.clone();
            change(&mut o);
            assert_eq!(plan(&o), [], "{what}");
        }
    }

    fn selectors(sgcs: &[(&str, &str)]) -> Arc<Selectors> {
        let sgcs: Vec<egress_api::StaticGatewayConfiguration> = sgcs
            .iter()
            .map(|(name, app)| {
                serde_json::from_value(serde_json::json!({
                    "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
                    "kind": "StaticGatewayConfiguration",
                    "metadata": {"name": name, "namespace": "ns"},
                    "spec": {"gatewayNodepoolName": "p", "podSelector": {"matchLabels": {"app": app}}},
                }))
                .unwrap()
            })
            .collect();
        Arc::new(Selectors::of(&sgcs))
    }

    /// `world()` with pod p1 unannotated, labelled `app: web`, and SGCs `a` and `b` ready.
    fn selected_world(sgcs: &[(&str, &str)]) -> Observed {
        let mut o = world();
        let p1 = o.pods.get_mut(&("ns".into(), "p1".into())).unwrap();
        p1.annotation = None;
        p1.labels = [("app".to_string(), "web".to_string())].into();
        o.selectors = selectors(sgcs);
        for name in ["a", "b"] {
            o.gateways
                .insert(("ns".into(), name.into()), GatewayState::Ready);
        }
        o
    }

    #[test]
    fn a_selected_pod_is_attached_moved_and_detached_like_an_annotated_one() {
        let mut o = selected_world(&[("a", "web")]);
        let attach = |gateway: &str, from: Option<&str>, o: &Observed| Step::Attach {
            sandbox: o.sandboxes[0].clone(),
            gateway: gateway.into(),
            from: from.map(Into::into),
        };
        assert_eq!(plan(&o), [attach("a", None, &o)]);
        // The selector moves to another SGC.
        o.tunnels.insert("c1".into(), "a".into());
        assert_eq!(plan(&o), []);
        o.selectors = selectors(&[("b", "web")]);
        assert_eq!(plan(&o), [attach("b", Some("a"), &o)]);
        // Relabelled out of every selector: detached.
        o.pods
            .get_mut(&("ns".into(), "p1".into()))
            .unwrap()
            .labels
            .clear();
        assert_eq!(
            plan(&o),
            [Step::Detach {
                sandbox: o.sandboxes[0].clone(),
                from: "a".into()
            }]
        );
        // The annotation wins over the selector.
        let mut o = selected_world(&[("a", "web")]);
        o.pods
            .get_mut(&("ns".into(), "p1".into()))
            .unwrap()
            .annotation = Some("gw".into());
        assert_eq!(plan(&o), [attach("gw", None, &o)]);
    }

    #[test]
    fn a_selector_conflict_waits_keeping_the_tunnel_and_naming_both() {
        let mut o = selected_world(&[("a", "web"), ("b", "web")]);
        let Step::Wait {
            gateway,
            from,
            reason,
            ..
        } = &plan(&o)[0]
        else {
            panic!("{:?}", plan(&o))
        };
        assert_eq!((gateway.as_str(), from), ("a", &None));
        assert!(reason.contains("(a, b)"), "{reason}");
        // On b already: stays (refused by b's gateways), the Event is about b.
        o.tunnels.insert("c1".into(), "b".into());
        let Step::Wait { gateway, from, .. } = &plan(&o)[0] else {
            panic!("{:?}", plan(&o))
        };
        assert_eq!((gateway.as_str(), from.as_deref()), ("b", Some("b")));
        // Resolved (b's selector no longer matches): stays on b if it is on b, else attaches.
        o.selectors = selectors(&[("a", "web"), ("b", "db")]);
        assert_eq!(
            plan(&o),
            [Step::Attach {
                sandbox: o.sandboxes[0].clone(),
                gateway: "a".into(),
                from: Some("b".into())
            }]
        );
    }

    #[test]
    fn a_selector_of_another_namespace_never_selects() {
        let mut o = selected_world(&[]);
        let sgc: egress_api::StaticGatewayConfiguration =
            serde_json::from_value(serde_json::json!({
                "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
                "kind": "StaticGatewayConfiguration",
                "metadata": {"name": "a", "namespace": "other"},
                "spec": {"gatewayNodepoolName": "p", "podSelector": {}},
            }))
            .unwrap();
        o.selectors = Arc::new(Selectors::of(&[sgc]));
        o.gateways
            .insert(("other".into(), "a".into()), GatewayState::Ready);
        assert_eq!(plan(&o), []);
    }

    #[test]
    fn a_plain_pod_without_a_tunnel_needs_nothing() {
        let mut o = world();
        o.pods = [pod("p1", "10.244.0.5", None)].into();
        assert_eq!(plan(&o), []);
    }
}
