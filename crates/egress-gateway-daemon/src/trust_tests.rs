//! Unit tests of `trust::check`: each refusal with its exact message, and what passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_api::PodEndpoint;
use egress_api::constants::POD_ENDPOINT_NODE_LABEL;
use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::{Refusal, check};
use crate::fixtures::*;
use crate::pods::PodFacts;
use egress_api::selection::{Choice, Selectors};

const IP: &str = "10.244.1.5/32";

fn ip() -> IpNet {
    IP.parse().unwrap()
}

fn pe() -> PodEndpoint {
    pod_endpoint("web", "gw-a", IP, &random_pub())
}

fn running() -> PodFacts {
    pod("web", "gw-a", &["10.244.1.5"], 0)
}

fn refused(pe: &PodEndpoint, pod: Option<&PodFacts>) -> (Refusal, String) {
    let r = check(pe, "gw-a", ip(), pod, &none()).unwrap_err();
    let text = r.to_string();
    (r, text)
}

/// No SGC has a `podSelector`.
fn none() -> Selectors {
    Selectors::default()
}

fn owner(pe: &mut PodEndpoint) -> &mut OwnerReference {
    &mut pe.metadata.owner_references.as_mut().unwrap()[0]
}

#[test]
fn the_cni_managers_podendpoint_for_a_running_annotated_pod_passes() {
    let s = check(&pe(), "gw-a", ip(), Some(&running()), &none()).unwrap();
    assert!(!s.provisional && !s.terminating);
    assert_eq!(s.pod_uid, pod_uid("web"));
    // During ADD the kubelet has not reported the IP yet: accepted, provisionally.
    let adding = pod("web", "gw-a", &[], 0);
    assert!(
        check(&pe(), "gw-a", ip(), Some(&adding), &none())
            .unwrap()
            .provisional
    );
    // A terminating pod still owns its IP until its sandbox is torn down.
    let mut leaving = running();
    leaving.terminating = true;
    assert!(
        check(&pe(), "gw-a", ip(), Some(&leaving), &none())
            .unwrap()
            .terminating
    );
}

#[test]
fn ownership_is_checked_against_the_pod_of_the_same_name() {
    let mut unowned = pe();
    unowned.metadata.owner_references = None;
    assert_eq!(
        refused(&unowned, Some(&running())).1,
        "it has no controller owner reference to a v1 Pod (the CNI manager writes every PodEndpoint owned by its pod)"
    );
    let mut not_controller = pe();
    owner(&mut not_controller).controller = Some(false);
    assert_eq!(
        refused(&not_controller, Some(&running())).0,
        Refusal::NotOwned
    );
    let mut not_a_pod = pe();
    owner(&mut not_a_pod).kind = "Deployment".into();
    assert_eq!(refused(&not_a_pod, Some(&running())).0, Refusal::NotOwned);

    let mut borrowed = pod_endpoint("evil", "gw-a", IP, &random_pub());
    owner(&mut borrowed).name = "web".into();
    assert_eq!(
        refused(&borrowed, Some(&running())).1,
        "its controller owner is pod \"web\", not the pod of the same name (the CNI manager names a PodEndpoint after its pod)"
    );

    assert_eq!(
        refused(&pe(), None).1,
        "its pod default/web does not exist or has finished"
    );
    let mut finished = running();
    finished.finished = true;
    assert_eq!(refused(&pe(), Some(&finished)).0.reason(), "pod_missing");

    let mut recreated = running();
    recreated.uid = "new-uid".into();
    assert_eq!(
        refused(&pe(), Some(&recreated)).1,
        "it is owned by pod UID pod-uid-web but pod default/web has UID new-uid (it belongs to an earlier pod of that name)"
    );
}

#[test]
fn the_pod_must_name_the_sgc_run_on_the_labelled_node_and_own_the_ip() {
    let other_sgc = pod("web", "gw-b", &["10.244.1.5"], 0);
    assert_eq!(
        refused(&pe(), Some(&other_sgc)).1,
        "pod default/web does not use StaticGatewayConfiguration \"gw-a\": its kubernetes.azure.com/static-gateway-configuration annotation names \"gw-b\""
    );
    let plain = pod("web", "", &["10.244.1.5"], 0);
    assert!(
        refused(&pe(), Some(&plain))
            .1
            .ends_with("no podSelector selects it")
    );

    let mut elsewhere = running();
    elsewhere.node_name = Some("aks-nodepool1-vmss000009".into());
    assert_eq!(
        refused(&pe(), Some(&elsewhere)).1,
        format!(
            "its {POD_ENDPOINT_NODE_LABEL} label is \"{POD_NODE}\" but pod default/web runs on node \"aks-nodepool1-vmss000009\" (only the CNI manager of the pod's node may write it)"
        )
    );
    let mut unlabelled = pe();
    unlabelled.metadata.labels = None;
    assert_eq!(
        refused(&unlabelled, Some(&running())).0.reason(),
        "wrong_node"
    );
    let mut unscheduled = running();
    unscheduled.node_name = None;
    assert!(
        refused(&pe(), Some(&unscheduled))
            .1
            .ends_with("runs on node none (only the CNI manager of the pod's node may write it)")
    );

    let other_ip = pod("web", "gw-a", &["10.244.1.6"], 0);
    assert_eq!(
        refused(&pe(), Some(&other_ip)).1,
        "spec.podIpAddress 10.244.1.5/32 is not an IP of pod default/web (status.podIPs: {10.244.1.6})"
    );
}

#[test]
fn every_reason_is_a_registered_metric_label() {
    let all = [
        Refusal::NotOwned,
        Refusal::OwnerName { owner: "x".into() },
        Refusal::PodMissing { pod: running().key },
        Refusal::PodUid {
            pod: running().key,
            owner_uid: "a".into(),
            pod_uid: "b".into(),
        },
        Refusal::NotAnnotated {
            pod: running().key,
            sgc: "g".into(),
            actual: Choice::None,
        },
        Refusal::WrongNode {
            pod: running().key,
            label: None,
            node: None,
        },
        Refusal::IpNotPods {
            pod: running().key,
            ip: ip(),
            pod_ips: Default::default(),
        },
        Refusal::IpTaken {
            ip: ip(),
            holder: running().key,
        },
        Refusal::KeyTaken {
            holder: running().key,
            interface: "wg-6000".into(),
        },
    ];
    let reasons: Vec<&str> = all.iter().map(Refusal::reason).collect();
    assert_eq!(reasons, Refusal::REASONS);
    assert_eq!(
        all.iter().filter(|r| r.is_contention()).count(),
        2,
        "only ip_taken and key_taken can resolve when the holder goes"
    );
}

fn selector_sgc(ns: &str, name: &str, app: &str) -> egress_api::StaticGatewayConfiguration {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"gatewayNodepoolName": "p", "podSelector": {"matchLabels": {"app": app}}},
    }))
    .unwrap()
}

#[test]
fn a_pod_selected_by_the_sgc_alone_passes_and_nothing_else_does() {
    let mut selected = pod("web", "", &["10.244.1.5"], 0);
    selected.labels = [("app".to_string(), "web".to_string())].into();
    let only_a = Selectors::of(&[selector_sgc(NS, "gw-a", "web")]);
    check(&pe(), "gw-a", ip(), Some(&selected), &only_a).unwrap();

    // Another SGC's selector matches too: neither may have the pod.
    let both = Selectors::of(&[
        selector_sgc(NS, "gw-a", "web"),
        selector_sgc(NS, "gw-b", "web"),
    ]);
    let r = check(&pe(), "gw-a", ip(), Some(&selected), &both).unwrap_err();
    assert_eq!(r.reason(), "not_annotated");
    assert!(
        r.to_string()
            .ends_with("the podSelectors of gw-a, gw-b all select it, so it uses none of them"),
        "{r}"
    );

    // A selector of the same name in another namespace never reaches this pod, whatever its
    // labels say.
    let elsewhere = Selectors::of(&[selector_sgc("other", "gw-a", "web")]);
    let r = check(&pe(), "gw-a", ip(), Some(&selected), &elsewhere).unwrap_err();
    assert!(r.to_string().ends_with("no podSelector selects it"), "{r}");

    // The annotation wins: an annotated pod matching gw-a's selector uses its annotation's SGC.
    let mut annotated = selected.clone();
    annotated.annotation = Some("gw-b".into());
    let r = check(&pe(), "gw-a", ip(), Some(&annotated), &only_a).unwrap_err();
    assert_eq!(
        r,
        Refusal::NotAnnotated {
            pod: running().key,
            sgc: "gw-a".into(),
            actual: Choice::Annotation("gw-b".into())
        }
    );
}
