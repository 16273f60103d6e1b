//! Unit tests of the selection rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;

fn sgc(ns: &str, name: &str, selector: Option<serde_json::Value>) -> StaticGatewayConfiguration {
    let mut spec = json!({"gatewayNodepoolName": "gw", "provisionPublicIps": true});
    if let Some(s) = selector {
        spec["podSelector"] = s;
    }
    serde_json::from_value(json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn world() -> Selectors {
    Selectors::of(&[
        sgc("ns", "web", Some(json!({"matchLabels": {"app": "web"}}))),
        sgc(
            "ns",
            "tier",
            Some(
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}),
            ),
        ),
        sgc("ns", "plain", None),
        sgc("other", "all", Some(json!({}))),
    ])
}

#[test]
fn the_annotation_wins_over_any_selector() {
    let s = world();
    let l = labels(&[("app", "web"), ("tier", "front")]);
    assert_eq!(
        s.choose("ns", &l, Some("plain")),
        Choice::Annotation("plain".into())
    );
    // Even when it names an SGC that does not exist: the annotation decides, selectors are
    // not a fallback.
    assert_eq!(
        s.choose("ns", &l, Some("missing")),
        Choice::Annotation("missing".into())
    );
}

#[test]
fn an_empty_annotation_counts_as_none() {
    let s = world();
    assert_eq!(
        s.choose("ns", &labels(&[("app", "web")]), Some("")),
        Choice::Selector("web".into())
    );
}

#[test]
fn one_matching_selector_gives_its_sgc_and_none_gives_nothing() {
    let s = world();
    assert_eq!(
        s.choose("ns", &labels(&[("app", "web")]), None),
        Choice::Selector("web".into())
    );
    assert_eq!(
        s.choose("ns", &labels(&[("tier", "front")]), None),
        Choice::Selector("tier".into())
    );
    assert_eq!(
        s.choose("ns", &labels(&[("app", "db")]), None),
        Choice::None
    );
    assert_eq!(s.choose("ns", &BTreeMap::new(), None), Choice::None);
}

#[test]
fn two_matching_selectors_give_a_conflict_naming_both_sorted() {
    let s = world();
    let c = s.choose("ns", &labels(&[("app", "web"), ("tier", "front")]), None);
    assert_eq!(c, Choice::Conflict(vec!["tier".into(), "web".into()]));
    assert_eq!(c.gateway(), None);
    let reason = c.conflict_reason("ns").unwrap();
    assert!(reason.contains("(tier, web)"), "{reason}");
}

#[test]
fn a_selector_only_matches_pods_of_its_own_namespace() {
    let s = world();
    // "all" selects every pod of "other", none of "ns"; "web" none of "other".
    assert_eq!(
        s.choose("other", &labels(&[("app", "web")]), None),
        Choice::Selector("all".into())
    );
    assert_eq!(
        s.choose("third", &labels(&[("app", "web")]), None),
        Choice::None
    );
    assert_eq!(
        s.namespaces().collect::<Vec<_>>(),
        vec!["ns", "other"],
        "namespaces with selectors"
    );
    assert!(!s.has_namespace("third"));
}

#[test]
fn an_empty_selector_selects_every_pod_of_the_namespace() {
    let sel = PodSelector::parse(&LabelSelector::default()).unwrap();
    assert!(sel.selects_all());
    assert!(sel.matches(&BTreeMap::new()));
    assert!(sel.matches(&labels(&[("x", "y")])));
}

#[test]
fn expressions_follow_kubernetes_semantics() {
    let parse = |v: serde_json::Value| {
        PodSelector::parse(&serde_json::from_value(json!({"matchExpressions": [v]})).unwrap())
    };
    let not_in = parse(json!({"key": "env", "operator": "NotIn", "values": ["prod"]})).unwrap();
    assert!(
        not_in.matches(&BTreeMap::new()),
        "NotIn matches a missing key"
    );
    assert!(not_in.matches(&labels(&[("env", "dev")])));
    assert!(!not_in.matches(&labels(&[("env", "prod")])));
    let exists = parse(json!({"key": "env", "operator": "Exists"})).unwrap();
    assert!(exists.matches(&labels(&[("env", "")])));
    assert!(!exists.matches(&BTreeMap::new()));
    let absent = parse(json!({"key": "env", "operator": "DoesNotExist"})).unwrap();
    assert!(absent.matches(&BTreeMap::new()));
    assert!(!absent.matches(&labels(&[("env", "x")])));
    let both: LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]
    }))
    .unwrap();
    let both = PodSelector::parse(&both).unwrap();
    assert!(both.matches(&labels(&[("app", "web"), ("env", "b")])));
    assert!(!both.matches(&labels(&[("app", "web"), ("env", "c")])));
    assert!(!both.matches(&labels(&[("env", "a")])));
}

#[test]
fn a_selector_that_does_not_parse_is_an_error_and_matches_nothing() {
    let cases = [
        (
            json!({"key": "a", "operator": "Equals", "values": ["x"]}),
            "not one of In, NotIn, Exists, DoesNotExist",
        ),
        (
            json!({"key": "a", "operator": "In"}),
            "needs at least one value",
        ),
        (
            json!({"key": "a", "operator": "NotIn", "values": []}),
            "needs at least one value",
        ),
        (
            json!({"key": "a", "operator": "Exists", "values": ["x"]}),
            "must not have values",
        ),
        (json!({"key": "", "operator": "Exists"}), "key is empty"),
    ];
    for (expr, want) in cases {
        let bad = sgc(
            "ns",
            "bad",
            Some(json!({"matchExpressions": [expr.clone()]})),
        );
        let err = check(&bad).unwrap().unwrap_err();
        assert!(err.to_string().contains(want), "{expr}: {err}");
        // Left out: not even a pod without labels (which `{}` would match) is selected.
        let s = Selectors::of(&[bad]);
        assert_eq!(
            s.choose("ns", &BTreeMap::new(), None),
            Choice::None,
            "{expr}"
        );
        assert!(!s.has_namespace("ns"));
    }
}

#[test]
fn an_invalid_selector_does_not_turn_a_unique_match_into_a_conflict() {
    let s = Selectors::of(&[
        sgc("ns", "web", Some(json!({"matchLabels": {"app": "web"}}))),
        sgc(
            "ns",
            "bad",
            Some(json!({"matchExpressions": [{"key": "app", "operator": "Bogus"}]})),
        ),
    ]);
    assert_eq!(
        s.choose("ns", &labels(&[("app", "web")]), None),
        Choice::Selector("web".into())
    );
}
