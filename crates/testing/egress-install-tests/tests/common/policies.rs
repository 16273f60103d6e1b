//! Loading the chart's rendered ValidatingAdmissionPolicies and bindings into egress-apiserver,
//! which evaluates them for real, and the identities the chart's components act as.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use egress_apiserver::UserInfo;
use egress_install_tests::manifests::all;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

/// The CNI manager's ServiceAccount in the default render.
pub const CNI_SA: &str = "kube-egress-gateway-cni-manager";

/// Creates every policy and binding of `objs` (as the administrator); how many objects.
pub async fn install(client: &kube::Client, objs: &[Value]) -> usize {
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let mut n = 0;
    for p in all(objs, "ValidatingAdmissionPolicy") {
        policies
            .create(
                &PostParams::default(),
                &serde_json::from_value(p.clone()).unwrap(),
            )
            .await
            .unwrap();
        n += 1;
    }
    for b in all(objs, "ValidatingAdmissionPolicyBinding") {
        bindings
            .create(
                &PostParams::default(),
                &serde_json::from_value(b.clone()).unwrap(),
            )
            .await
            .unwrap();
        n += 1;
    }
    n
}

/// The CNI manager of `node`, as its pod's ServiceAccount token identifies it.
pub fn cni_manager(namespace: &str, node: &str) -> UserInfo {
    UserInfo::service_account_on_node(namespace, CNI_SA, node)
}
