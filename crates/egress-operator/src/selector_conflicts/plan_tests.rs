//! Unit tests of the `SelectorConflict` plan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

fn sgc(name: &str, selector: Option<serde_json::Value>) -> StaticGatewayConfiguration {
    let mut spec = json!({"gatewayNodepoolName": "gwpool"});
    if let Some(s) = selector {
        spec["podSelector"] = s;
    }
    serde_json::from_value(json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "namespace": "ns", "generation": 3},
        "spec": spec,
    }))
    .unwrap()
}

fn web() -> Option<serde_json::Value> {
    Some(json!({"matchLabels": {"app": "web"}}))
}

fn pod(ns: &str, name: &str, app: &str, annotation: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        labels: Some([("app".to_string(), app.to_string())].into()),
        annotations: annotation.map(|a| [(POD_ANNOTATION.to_string(), a.to_string())].into()),
        ..ObjectMeta::default()
    }
}

/// Runs the plan, then stores what it applied (as the API server would).
fn pass(
    sgcs: &mut [StaticGatewayConfiguration],
    pods: &[ObjectMeta],
    now: i64,
) -> Vec<ConditionAction> {
    let refs: Vec<&StaticGatewayConfiguration> = sgcs.iter().collect();
    let pod_refs: Vec<&ObjectMeta> = pods.iter().collect();
    let actions = plan(&refs, &pod_refs, &at(now));
    for a in &actions {
        let sgc = sgcs.iter_mut().find(|s| s.name_any() == a.name).unwrap();
        let status = sgc.status.get_or_insert_with(Default::default);
        status.conditions.retain(|c| c.type_ != SELECTOR_CONFLICT);
        status.conditions.extend(a.condition.clone());
    }
    actions
}

fn cond(sgc: &StaticGatewayConfiguration) -> Option<(String, String, String)> {
    stored(sgc).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[test]
fn two_selectors_matching_the_same_pods_both_get_the_conflict_naming_the_other() {
    let mut sgcs = vec![sgc("a", web()), sgc("b", web()), sgc("plain", None)];
    let pods = vec![
        pod("ns", "web-1", "web", None),
        pod("ns", "web-2", "web", None),
        // Annotated: the annotation decides, no conflict.
        pod("ns", "web-3", "web", Some("plain")),
        pod("ns", "db-1", "db", None),
        // Another namespace: never selected by these.
        pod("other", "web-9", "web", None),
    ];
    let actions = pass(&mut sgcs, &pods, 10);
    assert_eq!(
        actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let (status, reason, message) = cond(&sgcs[0]).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", CONFLICTING_SELECTORS)
    );
    assert!(
        message.starts_with("2 pods (web-1, web-2) also selected by the podSelector of b: "),
        "{message}"
    );
    assert!(cond(&sgcs[1]).unwrap().2.contains("podSelector of a:"));
    assert!(cond(&sgcs[2]).is_none(), "no selector, no condition");

    // Nothing changed: nothing written.
    assert!(pass(&mut sgcs, &pods, 20).is_empty());

    // Resolved: b selects db pods now. Both flip to False, transition time moves.
    sgcs[1].spec.pod_selector =
        Some(serde_json::from_value(json!({"matchLabels": {"app": "db"}})).unwrap());
    let actions = pass(&mut sgcs, &pods, 30);
    assert_eq!(actions.len(), 2);
    for s in &sgcs[..2] {
        let c = stored(s).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", NO_CONFLICT)
        );
        assert_eq!(c.last_transition_time, at(30));
    }

    // b's selector removed: its condition goes with it.
    sgcs[1].spec.pod_selector = None;
    let actions = pass(&mut sgcs, &pods, 40);
    assert_eq!(
        actions,
        [ConditionAction {
            namespace: "ns".into(),
            name: "b".into(),
            condition: None
        }]
    );
    assert!(cond(&sgcs[1]).is_none());
}

#[test]
fn three_way_conflicts_are_grouped_by_the_other_sgcs() {
    let mut sgcs = vec![
        sgc("a", web()),
        sgc("b", web()),
        sgc(
            "c",
            Some(json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]})),
        ),
    ];
    let mut both = pod("ns", "p-both", "web", None);
    both.labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "x".into());
    let pods = vec![pod("ns", "p-web", "web", None), both];
    pass(&mut sgcs, &pods, 10);
    let a = cond(&sgcs[0]).unwrap().2;
    assert!(
        a.starts_with("1 pod (p-web) also selected by the podSelector of b; 1 pod (p-both) also selected by the podSelector of b, c: "),
        "{a}"
    );
    let c = cond(&sgcs[2]).unwrap().2;
    assert!(
        c.starts_with("1 pod (p-both) also selected by the podSelector of a, b: "),
        "{c}"
    );
}

#[test]
fn a_selector_that_does_not_parse_is_reported_not_matched() {
    let mut sgcs = vec![
        sgc(
            "bad",
            Some(
                json!({"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["web"]}]}),
            ),
        ),
        sgc("a", web()),
    ];
    let pods = vec![pod("ns", "web-1", "web", None)];
    pass(&mut sgcs, &pods, 10);
    let (status, reason, message) = cond(&sgcs[0]).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", INVALID_POD_SELECTOR)
    );
    assert!(message.contains("\"Equals\" is not one of"), "{message}");
    // It matches nothing, so "a" has web-1 alone.
    assert_eq!(cond(&sgcs[1]).unwrap().1, NO_CONFLICT);
}
