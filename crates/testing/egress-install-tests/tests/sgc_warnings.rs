//! Drop-in admission with the chart's warning policy loaded into the API server (which
//! evaluates ValidatingAdmissionPolicies, `Warn` → `Warning` headers): manifests the original
//! project accepts are stored (201/200), what the operator cannot satisfy comes back as a
//! warning naming the field, and `egressctl validate` gives exactly the same warnings (same
//! CEL, generated from crates/egress-api). `[Deny]` makes the same checks refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/policies.rs"]
mod policies;

use egress_apiserver::{ApiServer, ServerConfig};
use egress_install_tests::{helm, workspace_root};
use serde_json::{Value, json};

const PATH: &str = "/apis/egressgateway.kubernetes.azure.com/v1alpha1/namespaces/default/staticgatewayconfigurations";

async fn server(sets: &[&str]) -> (egress_apiserver::RunningApiServer, kube::Client) {
    let server =
        ApiServer::start(ServerConfig::default().with_crds(workspace_root().join("config/crd")))
            .await
            .unwrap();
    let admin = server.client().unwrap();
    let objs = helm::template_with_required(sets).unwrap();
    assert_eq!(policies::install(&admin, &objs).await, 4);
    (server, admin)
}

fn sgc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// Sends `body` (POST, or PUT to the object when `update`); the status and the warnings.
async fn write(client: &kube::Client, body: &Value, update: bool) -> (u16, Vec<String>, Value) {
    let name = body["metadata"]["name"].as_str().unwrap();
    let (method, uri) = if update {
        ("PUT", format!("{PATH}/{name}"))
    } else {
        ("POST", PATH.to_string())
    };
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        code,
        warnings,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The text of each `Warning: 299 - "..."` header after the policy prefix.
fn texts(warnings: &[String]) -> Vec<String> {
    warnings
        .iter()
        .map(|w| {
            let t = w.trim_start_matches("299 - ").trim_matches('"');
            let t = t.split_once("': ").map_or(t, |(_, m)| m);
            t.replace("\\\"", "\"")
        })
        .collect()
}

fn egressctl_warnings(obj: &Value, old: Option<&Value>) -> Vec<String> {
    egressctl::validate::Validator::new()
        .unwrap()
        .sgc_warnings(obj, old)
        .into_iter()
        .map(|(f, m)| if f.is_empty() { m } else { format!("{f}: {m}") })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_the_original_accepts_are_stored_with_the_warnings_egressctl_gives() {
    let (_server, client) = server(&[]).await;
    let cases = [
        // The manifest: clean.
        (
            "private",
            json!({"gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "gw", "publicIpPrefixSize": 0}, "provisionPublicIps": false}),
            0,
        ),
        (
            "small-prefix",
            json!({"gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "gw", "publicIpPrefixSize": 20}}),
            1,
        ),
        (
            "both",
            json!({"gatewayNodepoolName": "p", "gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "gw", "publicIpPrefixSize": 31}}),
            1,
        ),
        (
            "bad-cidrs",
            json!({"gatewayNodepoolName": "p", "excludeCidrs": ["10.0.0.0/8", "bogus"], "provisionPublicIps": false, "publicIpPrefixId": "/not/an/id"}),
            3,
        ),
    ];
    for (name, spec, expected) in cases {
        let obj = sgc(name, spec);
        let (code, warnings, stored) = write(&client, &obj, false).await;
        assert_eq!(code, 201, "{name}: {stored}");
        let got = texts(&warnings);
        assert_eq!(got.len(), expected, "{name}: {got:#?}");
        assert_eq!(
            got,
            egressctl_warnings(&stored, None),
            "{name}: same CEL, same warnings"
        );
    }
    // An update the original accepts: moving the pool is stored, with the warning.
    let old = sgc("moving", json!({"gatewayNodepoolName": "p"}));
    let (_, _, stored) = write(&client, &old, false).await;
    let mut new = stored.clone();
    new["spec"]["gatewayNodepoolName"] = json!("q");
    let (code, warnings, _) = write(&client, &new, true).await;
    assert_eq!(code, 200);
    let got = texts(&warnings);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("spec.gatewayNodepoolName: changed from \"p\" to \"q\""),
        "{got:?}"
    );
    assert_eq!(got, egressctl_warnings(&new, Some(&stored)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_makes_the_same_checks_refusals() {
    let (_server, client) = server(&["sgcAdmission.validationActions={Deny}"]).await;
    let obj = sgc(
        "small-prefix",
        json!({"gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "gw", "publicIpPrefixSize": 20}}),
    );
    let (code, _, body) = write(&client, &obj, false).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(
            "spec.gatewayVmssProfile.publicIpPrefixSize: 20, but with provisionPublicIps: true"
        ),
        "{body}"
    );
}
