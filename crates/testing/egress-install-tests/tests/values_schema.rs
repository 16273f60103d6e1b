//! `values.schema.json`: a misspelt or mistyped value fails `helm template` (and so `helm
//! install`) with the pinned helm, naming the value, instead of being silently ignored; every
//! value of `values.yaml` is in the schema and the defaults satisfy it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_install_tests::{chart_dir, helm};
use serde_json::Value;

fn refused(sets: &[&str], fragment: &str) {
    match helm::template_with_required(sets) {
        Ok(_) => panic!("{sets:?} rendered"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(fragment), "{sets:?}: {msg}");
        }
    }
}

#[test]
fn misspelt_and_mistyped_values_fail_helm_template() {
    refused(
        &["gatewayDaemon.statusMaxPeer=5"],
        "Additional property statusMaxPeer is not allowed",
    );
    refused(
        &["operatr.enabled=false"],
        "Additional property operatr is not allowed",
    );
    refused(
        &["cniManager.uninstallOnExit=true"],
        "Additional property uninstallOnExit is not allowed",
    );
    refused(&["operator.metricsPort=http"], "metricsPort");
    refused(
        &["gatewayDaemon.wireguardBackend=kernal"],
        "wireguardBackend",
    );
    refused(
        &["sgcAdmission.validationActions={Block}"],
        "validationActions",
    );
    refused(
        &["metrics.prometheusRule.snatPortUsageThreshold=80"],
        "snatPortUsageThreshold",
    );
    // A prober address that is not one would crash-loop the new lb-probe.
    refused(
        &["gatewayDaemon.lbProbe.proberIps={168.63.129.16,azure-prober}"],
        "proberIps",
    );
    // Free-form maps and numeric tags stay usable.
    helm::template_with_required(&[
        "gatewayDaemon.lbProbe.proberIps={168.63.129.16,fd00::1}",
        "image.tag=1",
        "operator.podLabels.team=net",
        "gatewayDaemon.nodeSelector.pool=gw",
        "operator.extraArgs={--resync-seconds=60}",
    ])
    .unwrap();
}

/// Every leaf path of `values.yaml`, for the schema walk.
fn leaves(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaves(x, &format!("{path}.{k}"), out);
            }
        }
        _ => out.push(path.trim_start_matches('.').to_string()),
    }
}

#[test]
fn every_value_is_in_the_schema() {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let mut paths = Vec::new();
    leaves(&values, "", &mut paths);
    for p in paths {
        let mut node = &schema;
        for part in p.split('.') {
            if node["type"] == "object" && node.get("properties").is_none() {
                break; // a free-form map
            }
            node = node["properties"]
                .get(part)
                .unwrap_or_else(|| panic!("{p} is not in values.schema.json"));
        }
    }
}
