//! Pure: which pods use each StaticGatewayConfiguration (its PodEndpoints), the status the
//! in-use protection owns (`podCount`, condition `InUse`), whether a deleted SGC's in-use
//! finalizer can go, and the Events a pass publishes. Only changes are planned.

use std::collections::BTreeMap;

use egress_api::conditions::{IN_USE, condition, set_condition};
use egress_api::constants::IN_USE_FINALIZER;
use egress_api::{PodEndpoint, StaticGatewayConfiguration};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Resource, ResourceExt};

/// Pod names shown in a message (the count is always complete).
pub const SAMPLE: usize = 5;

/// `InUse` reason while a requested deletion waits for the pods.
pub const DELETION_BLOCKED: &str = "DeletionBlocked";
/// `InUse` reason when pods use a gateway nobody is deleting (or whose protection is gone).
pub const PODS_USING_GATEWAY: &str = "PodsUsingGateway";
/// `InUse` reason when no pod uses the gateway.
pub const NOT_IN_USE: &str = "NotInUse";
/// Normal Event reason when a blocked deletion may proceed.
pub const DELETION_UNBLOCKED: &str = "DeletionUnblocked";

/// An Event to publish on the SGC once its status was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// The note.
    pub note: String,
}

/// What one pass does to one SGC, in this order: status, Event, finalizer.
#[derive(Debug, Clone, PartialEq)]
pub struct SgcAction {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The SGC as Events name it.
    pub reference: ObjectReference,
    /// `podCount` and the `InUse` condition to apply, when they changed.
    pub status: Option<(i32, Condition)>,
    /// The Event of a transition into or out of a blocked deletion.
    pub event: Option<PlannedEvent>,
    /// Remove the in-use finalizer: the SGC is being deleted and no pod uses it.
    pub release: bool,
}

/// Names of the live PodEndpoints per `(namespace, SGC name)`, sorted.
pub fn users(pod_endpoints: &[&PodEndpoint]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for pe in pod_endpoints {
        // A PodEndpoint being deleted no longer carries traffic worth protecting.
        if pe.meta().deletion_timestamp.is_some() {
            continue;
        }
        let Some(sgc) = pe.spec.static_gateway_configuration.clone() else {
            continue;
        };
        out.entry((pe.namespace().unwrap_or_default(), sgc))
            .or_default()
            .push(pe.name_any());
    }
    for names in out.values_mut() {
        names.sort();
    }
    out
}

/// "3 pods (a, b, c)" or "7 pods (a, b, c, d, e and 2 more)".
pub fn describe(pods: &[String]) -> String {
    let n = pods.len();
    let shown = pods
        .iter()
        .take(SAMPLE)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let noun = if n == 1 { "pod" } else { "pods" };
    if n > SAMPLE {
        format!("{n} {noun} ({shown} and {} more)", n - SAMPLE)
    } else {
        format!("{n} {noun} ({shown})")
    }
}

/// Whether the SGC is being deleted and the in-use finalizer still holds it.
fn protected_deletion(sgc: &StaticGatewayConfiguration) -> bool {
    sgc.meta().deletion_timestamp.is_some()
        && sgc.finalizers().iter().any(|f| f == IN_USE_FINALIZER)
}

/// The `InUse` condition (status, reason, message) of an SGC used by `pods`.
fn in_use(sgc: &StaticGatewayConfiguration, pods: &[String]) -> (bool, &'static str, String) {
    if pods.is_empty() {
        (false, NOT_IN_USE, "no pod uses this gateway".to_string())
    } else if protected_deletion(sgc) {
        let message = format!(
            "deletion requested; it waits until no pod uses this gateway (delete the pods, point their annotation elsewhere or change the podSelector that selects them): used by {}",
            describe(pods)
        );
        (true, DELETION_BLOCKED, message)
    } else {
        (
            true,
            PODS_USING_GATEWAY,
            format!("used by {}", describe(pods)),
        )
    }
}

fn stored_in_use(sgc: &StaticGatewayConfiguration) -> Option<&Condition> {
    sgc.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == IN_USE))
}

/// Plans one pass at `now` over every SGC the operator sees.
pub fn plan(
    sgcs: &[&StaticGatewayConfiguration],
    pod_endpoints: &[&PodEndpoint],
    now: &Time,
) -> Vec<SgcAction> {
    let users = users(pod_endpoints);
    let none = Vec::new();
    let mut out = Vec::new();
    for sgc in sgcs {
        let (namespace, name) = (sgc.namespace().unwrap_or_default(), sgc.name_any());
        let pods = users
            .get(&(namespace.clone(), name.clone()))
            .unwrap_or(&none);
        let count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        let (ok, reason, message) = in_use(sgc, pods);
        let stored = stored_in_use(sgc);
        let mut merged: Vec<Condition> = stored.into_iter().cloned().collect();
        let wanted = condition(
            IN_USE,
            ok,
            reason,
            message.clone(),
            sgc.meta().generation,
            now.clone(),
        );
        let changed = set_condition(&mut merged, wanted);
        let stored_count = sgc.status.as_ref().and_then(|s| s.pod_count);
        let status = (changed || stored_count != Some(count))
            .then(|| merged.pop())
            .flatten()
            .map(|c| (count, c));
        let was_blocked = stored.is_some_and(|c| c.reason == DELETION_BLOCKED);
        let release = protected_deletion(sgc) && pods.is_empty();
        let event = if reason == DELETION_BLOCKED && !was_blocked {
            Some(PlannedEvent {
                warning: true,
                reason: DELETION_BLOCKED,
                note: format!(
                    "deletion requested while {} {} this gateway; it proceeds when the last one stops using it",
                    describe(pods),
                    if pods.len() == 1 { "uses" } else { "use" }
                ),
            })
        } else if release && was_blocked {
            Some(PlannedEvent {
                warning: false,
                reason: DELETION_UNBLOCKED,
                note: "no pod uses this gateway any more; deleting it".to_string(),
            })
        } else {
            None
        };
        if status.is_some() || event.is_some() || release {
            out.push(SgcAction {
                namespace,
                name,
                reference: sgc.object_ref(&()),
                status,
                event,
                release,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn sgc(meta: &str, status: &str) -> StaticGatewayConfiguration {
        serde_saphyr::from_str(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: StaticGatewayConfiguration\nmetadata: {{name: gw, namespace: ns, generation: 2, {meta}}}\nspec: {{gatewayNodepoolName: gwpool}}\nstatus: {status}\n"
        ))
        .unwrap()
    }

    const LIVE: &str = "finalizers: [static-gateway-configuration-controller.microsoft.com, egressgateway.kubernetes.azure.com/in-use-protection]";
    const DELETING: &str = "deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: [static-gateway-configuration-controller.microsoft.com, egressgateway.kubernetes.azure.com/in-use-protection]";

    fn pe(ns: &str, name: &str, sgc: &str) -> PodEndpoint {
        serde_saphyr::from_str(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: PodEndpoint\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{staticGatewayConfiguration: {sgc}, podIpAddress: 10.244.1.5/32}}\n"
        ))
        .unwrap()
    }

    fn now() -> Time {
        Time(Timestamp::from_second(1_000).unwrap())
    }

    /// The SGC with the status the action wrote (as the next pass would see it).
    fn after(s: &StaticGatewayConfiguration, a: &SgcAction) -> StaticGatewayConfiguration {
        let mut s = s.clone();
        let (count, c) = a.status.clone().unwrap();
        let status = s.status.get_or_insert_with(Default::default);
        status.pod_count = Some(count);
        set_condition(&mut status.conditions, c);
        s
    }

    #[test]
    fn counts_only_live_pod_endpoints_of_the_same_namespace_and_samples_five() {
        let pes: Vec<PodEndpoint> = (0..7)
            .map(|i| pe("ns", &format!("p{i}"), "gw"))
            .chain([pe("other", "x", "gw"), pe("ns", "y", "gw2")])
            .collect();
        let mut gone = pe("ns", "q", "gw");
        gone.metadata.deletion_timestamp = Some(now());
        let mut refs: Vec<&PodEndpoint> = pes.iter().collect();
        refs.push(&gone);
        let s = sgc(LIVE, "{}");
        let out = plan(&[&s], &refs, &now());
        let (count, c) = out[0].status.clone().unwrap();
        assert_eq!(count, 7);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", PODS_USING_GATEWAY)
        );
        assert_eq!(c.message, "used by 7 pods (p0, p1, p2, p3, p4 and 2 more)");
        assert!(!out[0].release && out[0].event.is_none());
        assert_eq!(describe(&["a".into()]), "1 pod (a)");
    }

    #[test]
    fn a_deletion_waits_for_the_pods_then_releases_the_finalizer() {
        let (a, b) = (pe("ns", "a", "gw"), pe("ns", "b", "gw"));
        let s = sgc(LIVE, "{}");
        let live = after(&s, &plan(&[&s], &[&a, &b], &now())[0]);
        // Deletion requested: blocked, condition and a Warning Event naming the pods.
        let mut deleting = live.clone();
        deleting.metadata.deletion_timestamp = Some(now());
        let out = plan(&[&deleting], &[&a, &b], &now());
        assert!(!out[0].release);
        let (_, c) = out[0].status.clone().unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", DELETION_BLOCKED)
        );
        assert!(c.message.contains("2 pods (a, b)"), "{}", c.message);
        let ev = out[0].event.clone().unwrap();
        assert!(ev.warning && ev.reason == DELETION_BLOCKED, "{ev:?}");
        assert!(ev.note.contains("2 pods (a, b) use this"), "{}", ev.note);
        // One pod goes: still blocked, the message follows, no second Event.
        let blocked = after(&deleting, &out[0]);
        let out = plan(&[&blocked], &[&b], &now());
        assert!(!out[0].release && out[0].event.is_none());
        assert_eq!(out[0].status.clone().unwrap().0, 1);
        // The last goes: released, condition False, a Normal Event.
        let blocked = after(&blocked, &out[0]);
        let out = plan(&[&blocked], &[], &now());
        assert!(out[0].release);
        let (count, c) = out[0].status.clone().unwrap();
        assert_eq!(
            (count, c.status.as_str(), c.reason.as_str()),
            (0, "False", NOT_IN_USE)
        );
        let ev = out[0].event.clone().unwrap();
        assert!(!ev.warning && ev.reason == DELETION_UNBLOCKED);
    }

    #[test]
    fn unused_deletions_release_at_once_and_unchanged_sgcs_plan_nothing() {
        let s = sgc(DELETING, "{}");
        let out = plan(&[&s], &[], &now());
        assert!(out[0].release);
        assert!(out[0].event.is_none(), "never blocked: no Event");
        // Already counted and nothing changed: no action at all, even at a later time.
        let live = sgc(LIVE, "{}");
        let a = pe("ns", "a", "gw");
        let counted = after(&live, &plan(&[&live], &[&a], &now())[0]);
        let later = Time(Timestamp::from_second(2_000).unwrap());
        assert!(plan(&[&counted], &[&a], &later).is_empty());
        // Protection removed by hand (finalizer gone): counted, never blocked or released.
        let forced = sgc(
            "deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: [static-gateway-configuration-controller.microsoft.com]",
            "{}",
        );
        let out = plan(&[&forced], &[&a], &now());
        assert!(!out[0].release && out[0].event.is_none());
        assert_eq!(out[0].status.clone().unwrap().1.reason, PODS_USING_GATEWAY);
    }
}
