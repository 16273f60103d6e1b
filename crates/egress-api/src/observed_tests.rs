#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

fn status(yaml: &str) -> GatewayStatus {
    serde_saphyr::from_str(yaml).unwrap()
}

fn pe(key: &str) -> PodEndpoint {
    serde_saphyr::from_str(&format!(
        "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: PodEndpoint\nmetadata: {{name: web, namespace: ns}}\nspec: {{staticGatewayConfiguration: gw, podIpAddress: 10.244.1.5/32, podPublicKey: '{key}'}}\n"
    ))
    .unwrap()
}

const KEY: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdE=";

fn node(name: &str, peers: &str, refused: &str, heartbeat: &str) -> GatewayStatus {
    let total = peers.matches("name:").count();
    status(&format!(
        "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: GatewayStatus\nmetadata: {{name: {name}, namespace: sys}}\nspec:\n  heartbeatTime: '{heartbeat}'\n  heartbeatSeconds: 60\n  egressIPs: [{{privateIP: 10.0.1.9, publicIP: 203.0.113.1}}]\n  readyGatewayConfigurations: [{{staticGatewayConfiguration: ns/gw, interfaceName: wg-6000}}]\n  gateways: [{{staticGatewayConfiguration: ns/gw, interfaceName: wg-6000, peersTotal: {total}, peers: {peers}}}]\n  refused: {refused}\n"
    ))
}

#[test]
fn heartbeat_is_fresh_within_two_periods_and_unknown_without_one() {
    let s = node("a", "[]", "[]", "2026-01-01T00:00:00Z");
    let at = |secs: i64| Timestamp::from_second(1_767_225_600 + secs).unwrap();
    assert_eq!(
        heartbeat(&s, at(30)),
        Heartbeat::Fresh(Duration::from_secs(30))
    );
    assert_eq!(
        heartbeat(&s, at(135)),
        Heartbeat::Fresh(Duration::from_secs(135))
    );
    assert_eq!(
        heartbeat(&s, at(136)),
        Heartbeat::Stale(Duration::from_secs(136))
    );
    let mut old = s.clone();
    old.spec.heartbeat_time = None;
    assert_eq!(heartbeat(&old, at(9999)), Heartbeat::Unknown);
}

#[test]
fn profiles_find_their_node_by_name_or_ip() {
    let statuses = vec![node("aks-gw-0", "[]", "[]", "2026-01-01T00:00:00Z")];
    let by_name = GatewayVMProfile {
        node_name: Some("AKS-GW-0".into()),
        ..Default::default()
    };
    assert!(status_of_profile(&statuses, &by_name).is_some());
    let by_ip = GatewayVMProfile {
        node_name: Some("nic-3".into()),
        secondary_ip: Some("10.0.1.9".into()),
        ..Default::default()
    };
    assert!(status_of_profile(&statuses, &by_ip).is_some());
    assert_eq!(public_ip(&statuses[0], "10.0.1.9"), Some("203.0.113.1"));
    let other = GatewayVMProfile {
        node_name: Some("x".into()),
        secondary_ip: Some("10.0.1.10".into()),
        ..Default::default()
    };
    assert!(status_of_profile(&statuses, &other).is_none());
}

#[test]
fn a_peer_is_programmed_missing_refused_or_absent() {
    let t = "2026-01-01T00:00:00Z";
    let ok = node(
        "a",
        "[{name: web, key: AbCdEfGh, handshake: 1767225590}]",
        "[]",
        t,
    );
    assert!(
        matches!(peer_on_node(&ok, "ns/gw", &pe(KEY)), PeerOnNode::Programmed(p) if p.handshake == Some(1_767_225_590))
    );
    let other = pe("ZZZZEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdE=");
    assert!(matches!(
        peer_on_node(&ok, "ns/gw", &other),
        PeerOnNode::OtherKey(_)
    ));
    let missing = node("b", "[{name: web, key: AbCdEfGh, missing: true}]", "[]", t);
    assert!(matches!(
        peer_on_node(&missing, "ns/gw", &pe(KEY)),
        PeerOnNode::Missing(_)
    ));
    let refused = node(
        "c",
        "[]",
        "[{podEndpoint: ns/web, reason: ip_taken, message: taken}]",
        t,
    );
    assert!(
        matches!(peer_on_node(&refused, "ns/gw", &pe(KEY)), PeerOnNode::Refused(r) if r.reason == "ip_taken")
    );
    let none = node("d", "[]", "[]", t);
    assert_eq!(peer_on_node(&none, "ns/gw", &pe(KEY)), PeerOnNode::Absent);
    assert_eq!(
        peer_on_node(&none, "ns/other", &pe(KEY)),
        PeerOnNode::Absent
    );
    let mut cut = none.clone();
    cut.spec.gateways.as_mut().unwrap()[0].peers_total = 10_000;
    assert_eq!(peer_on_node(&cut, "ns/gw", &pe(KEY)), PeerOnNode::NotListed);

    let nodes = vec![
        ("a".to_string(), Some(&ok)),
        ("b".to_string(), Some(&missing)),
    ];
    let st = pod_endpoint_status(&pe(KEY), "ns/gw", &nodes);
    assert_eq!(st.phase.as_deref(), Some("Partial"));
    assert_eq!(st.programmed.as_deref(), Some("1/2"));
    assert_eq!(st.reason.as_deref(), Some("missing"));
    let st = pod_endpoint_status(&pe(KEY), "ns/gw", &[("a".into(), Some(&ok))]);
    assert_eq!((st.phase.as_deref(), st.reason), (Some("Programmed"), None));
    let st = pod_endpoint_status(
        &pe(KEY),
        "ns/gw",
        &[("a".into(), Some(&ok)), ("c".into(), Some(&refused))],
    );
    assert_eq!(st.phase.as_deref(), Some("Refused"));
    assert_eq!(st.message.as_deref(), Some("taken"));
    let st = pod_endpoint_status(&pe(KEY), "ns/gw", &[("z".into(), None)]);
    assert_eq!(
        (st.phase.as_deref(), st.programmed.as_deref()),
        (Some("Pending"), Some("0/1"))
    );
}

#[test]
fn drift_on_a_pods_path_is_its_own_its_gateways_or_the_nodes() {
    let mut s = node("a", "[]", "[]", "2026-01-01T00:00:00Z");
    let record = |kind: &str, pe: Option<&str>, iface: Option<&str>, at: i64| Drift {
        kind: kind.into(),
        change: "missing".into(),
        pod_endpoint: pe.map(Into::into),
        interface_name: iface.map(Into::into),
        repair: format!("{kind} {at}"),
        detected_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(1_767_225_600 + at).unwrap(),
        ),
        repaired: true,
        error: None,
    };
    let web = pe(KEY);
    let found = |s: &GatewayStatus| drift_for(s, Some("wg-6000"), &web).map(|d| d.repair.clone());
    assert_eq!(found(&s), None);
    s.spec.drift = Some(vec![
        record("peer", Some("ns/web"), Some("wg-6000"), 1),
        record("peer", Some("ns/other"), Some("wg-6000"), 2),
        record("peer", None, Some("wg-6000"), 3),
        record("route", None, Some("wg-6000"), 4),
        record("address", None, Some("wg-6001"), 5),
    ]);
    assert_eq!(
        found(&s).as_deref(),
        Some("peer 1"),
        "its own, not others' or strangers'"
    );
    s.spec
        .drift
        .as_mut()
        .unwrap()
        .push(record("wireguard", None, Some("wg-6000"), 6));
    assert_eq!(
        found(&s).as_deref(),
        Some("wireguard 6"),
        "its gateway's device"
    );
    s.spec
        .drift
        .as_mut()
        .unwrap()
        .push(record("sysctl", None, None, 7));
    assert_eq!(found(&s).as_deref(), Some("sysctl 7"), "the node's");
}
