//! Every metric the chart's Grafana dashboard and PrometheusRule use exists in the binaries'
//! registries (operator, gateway daemon, CNI manager), with the right type for how it is used
//! (`_total` of a counter, `_bucket` of a histogram). The registries are the ones the binaries
//! serve on `/metrics`; each lists every family it registers, also before any sample.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use egress_install_tests::manifests::all;
use egress_install_tests::{chart_dir, helm};

/// `name -> type` of every family the three binaries register. Gauges labelled per gateway
/// or egress IP have series only while such a gateway exists: one sample of each is taken
/// through the binaries' own recording functions first.
fn families() -> BTreeMap<String, String> {
    let operator = egress_operator::Metrics::new(&egress_azure::ArmMetrics::new());
    operator.set_gateway_health([("ns/gw".to_string(), 2, 2)]);
    let daemon = egress_gateway_daemon::metrics::Metrics::new();
    let gw = egress_gateway_daemon::metrics::GatewayLabels {
        gateway: "ns/gw".into(),
        interface: "wg-6000".into(),
    };
    daemon.sample(
        &gw,
        1,
        Some(std::time::Duration::from_secs(3)),
        Some(egress_gateway_daemon::metrics::Traffic::default()),
    );
    let snat = egress_gateway_daemon::metrics::SnatLabels {
        gateway: "ns/gw".into(),
        egress_ip: "10.0.1.5".into(),
    };
    daemon.set_snat(&[(snat, (1, 0.1))].into(), 1);
    let texts = [
        operator.encode().unwrap(),
        daemon.encode().unwrap(),
        egress_cni_manager::metrics::Metrics::default().encode(),
    ];
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_string(), kind.to_string()))
        })
        .collect()
}

/// The metric names an expression uses (our prefixes only).
fn used(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("egress_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Whether sample name `name` exists in `families`.
fn exists(name: &str, families: &BTreeMap<String, String>) -> bool {
    let kind = |base: &str| families.get(base).map(String::as_str);
    kind(name).is_some_and(|k| k == "gauge")
        || name
            .strip_suffix("_total")
            .is_some_and(|b| kind(b) == Some("counter"))
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|b| kind(b) == Some("histogram"))
        })
}

#[test]
fn every_metric_of_the_dashboard_and_the_alerts_exists() {
    let families = families();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("files/dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    let objs = helm::template_with_required(&[
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboard.enabled=true",
    ])
    .unwrap();
    let rule = all(&objs, "PrometheusRule").next().unwrap();
    let alerts: Vec<String> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "EgressGatewayWithoutHealthyNode",
        "EgressGatewayHandshakeStale",
        "EgressAzureThrottling",
        "EgressSnatPortsExhausting",
        "EgressGatewayDrift",
    ] {
        assert!(
            alerts.iter().any(|a| a == want),
            "{want} missing: {alerts:?}"
        );
    }
    exprs.extend(
        rule["spec"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["expr"].as_str().unwrap().to_string()),
    );
    let cm = all(&objs, "ConfigMap")
        .find(|c| {
            c["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-dashboard")
        })
        .unwrap();
    assert!(
        cm["data"]["kube-egress-gateway.json"]
            .as_str()
            .unwrap()
            .contains("\"panels\"")
    );
    let names: BTreeSet<String> = exprs.iter().flat_map(|e| used(e)).collect();
    assert!(names.len() >= 15, "{names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| !exists(n, &families)).collect();
    assert!(
        missing.is_empty(),
        "used but not exported: {missing:?}\nfamilies: {families:#?}"
    );
}

#[test]
fn monitoring_objects_are_off_by_default() {
    let objs = helm::template_with_required(&[]).unwrap();
    assert_eq!(all(&objs, "PrometheusRule").count(), 0);
    assert!(!all(&objs, "ConfigMap").any(|c| {
        c["metadata"]["name"]
            .as_str()
            .unwrap()
            .ends_with("-dashboard")
    }));
}
