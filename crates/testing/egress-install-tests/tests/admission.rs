//! The chart's PodEndpoint admission policy, rendered by the pinned helm and evaluated by
//! egress-apiserver (real CEL over the request's impersonated identity): only the CNI
//! manager's ServiceAccount may write PodEndpoints, the manager of node A only those labelled
//! for node A (pods of its node) and controlled by the pod of their name, never another
//! node's; everyone else is refused; deletions by others are left to RBAC. What admission
//! cannot see (which node the labelled pod really runs on) the gateway daemons check
//! (`egress-gateway-daemon`'s trust tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/policies.rs"]
mod policies;

use egress_api::PodEndpoint;
use egress_api::constants::{API_VERSION, FIELD_MANAGER_CNI_MANAGER, POD_ANNOTATION};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig, UserInfo};
use egress_install_tests::helm::{self, NAMESPACE};
use egress_install_tests::manifests::all;
use egress_install_tests::workspace_root;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use policies::{CNI_SA, cni_manager, install};
use serde_json::{Value, json};

const APP_NS: &str = "default";

struct Cluster {
    server: RunningApiServer,
    admin: kube::Client,
}

/// A server with the CRDs, the chart's policies (rendered with `sets`), and pods `web-a` on
/// node-a and `web-b` on node-b.
async fn cluster(sets: &[&str]) -> Cluster {
    let server =
        ApiServer::start(ServerConfig::default().with_crds(workspace_root().join("config/crd")))
            .await
            .unwrap();
    let admin = server.client().unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap(),
        )
        .await
        .unwrap();
    let objs = helm::template_with_required(sets).unwrap();
    assert_eq!(
        install(&admin, &objs).await,
        4,
        "two policies (PodEndpoint writers, SGC warnings) with their bindings"
    );
    let pods: Api<Pod> = Api::namespaced(admin.clone(), APP_NS);
    for (name, node) in [("web-a", "node-a"), ("web-b", "node-b")] {
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": {POD_ANNOTATION: "gw"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    }
    Cluster { server, admin }
}

impl Cluster {
    fn client(&self, user: &UserInfo) -> kube::Client {
        self.server.client_as(user).unwrap()
    }

    async fn uid(&self, pod: &str) -> String {
        Api::<Pod>::namespaced(self.admin.clone(), APP_NS)
            .get(pod)
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap()
    }

    /// The PodEndpoint of `pod` as a CNI manager writes it, labelled for `node`.
    async fn endpoint(&self, pod: &str, node: &str) -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": "PodEndpoint",
            "metadata": {"name": pod, "namespace": APP_NS,
                "labels": {egress_api::constants::POD_ENDPOINT_NODE_LABEL: node},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod,
                    "uid": self.uid(pod).await, "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"staticGatewayConfiguration": "gw", "podIpAddress": "10.244.1.5/32",
                     "podPublicKey": "q9J7tLqm0kPjxBZ6X0Zm6pm7V9y6hT4GHwY2p2r2Ujs="},
        })
    }
}

/// Server-side apply as the CNI manager does it; the refusal's (code, message) if refused.
async fn apply(client: &kube::Client, pe: Value) -> Result<(), (u16, String)> {
    let name = pe["metadata"]["name"].as_str().unwrap().to_owned();
    Api::<PodEndpoint>::namespaced(client.clone(), APP_NS)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER_CNI_MANAGER).force(),
            &Patch::Apply(pe),
        )
        .await
        .map(|_| ())
        .map_err(refusal)
}

fn refusal(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn denied(result: Result<(), (u16, String)>, ends_with: &str) {
    let (code, message) = result.expect_err("denied");
    assert_eq!(code, 403, "{message}");
    let policy = "ValidatingAdmissionPolicy 'kube-egress-gateway-podendpoint-writers' with binding 'kube-egress-gateway-podendpoint-writers' denied request: ";
    assert!(
        message.contains(policy) && message.ends_with(ends_with),
        "{message}\n  should end with: {ends_with}"
    );
}

fn sa(name: &str) -> String {
    format!("system:serviceaccount:{NAMESPACE}:{name}")
}

#[tokio::test]
async fn the_cni_manager_of_node_a_writes_only_node_a_pod_endpoints() {
    let c = cluster(&[]).await;
    let manager_a = c.client(&cni_manager(NAMESPACE, "node-a"));
    let manager_b = c.client(&cni_manager(NAMESPACE, "node-b"));

    // Its own node's pod: created, and updated again (a new sandbox).
    apply(&manager_a, c.endpoint("web-a", "node-a").await)
        .await
        .unwrap();
    let mut again = c.endpoint("web-a", "node-a").await;
    again["spec"]["podIpAddress"] = json!("10.244.1.6/32");
    apply(&manager_a, again).await.unwrap();

    // A pod of node B, whether labelled as such or as its own node's.
    denied(
        apply(&manager_a, c.endpoint("web-b", "node-b").await).await,
        "the CNI manager of node node-a may only write PodEndpoints labelled egressgateway.kubernetes.azure.com/node=node-a (pods of its own node), not \"node-b\"",
    );
    // (Labelled node-a it is admitted: admission cannot see where web-b runs; every gateway
    // daemon refuses it because the label differs from the pod's spec.nodeName.)

    // Node B's manager may neither take over nor delete node A's PodEndpoint.
    denied(
        apply(&manager_b, c.endpoint("web-a", "node-b").await).await,
        "the CNI manager of node node-b may not change or delete the PodEndpoint of node \"node-a\"",
    );
    let delete_b = Api::<PodEndpoint>::namespaced(manager_b.clone(), APP_NS)
        .delete("web-a", &DeleteParams::default())
        .await
        .map(|_| ())
        .map_err(refusal);
    denied(
        delete_b,
        "the CNI manager of node node-b may not change or delete the PodEndpoint of node \"node-a\"",
    );

    // Not controlled by the pod of its name.
    let mut unowned = c.endpoint("web-a", "node-a").await;
    unowned["metadata"]["ownerReferences"][0]["name"] = json!("web-b");
    denied(
        apply(&manager_a, unowned).await,
        "a PodEndpoint must be controlled by the Pod of its name (ownerReferences entry with apiVersion v1, kind Pod, the same name and controller: true)",
    );

    // The CNI manager deletes its own node's PodEndpoint at DEL.
    Api::<PodEndpoint>::namespaced(manager_a.clone(), APP_NS)
        .delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn everyone_else_is_refused_and_deletions_by_others_are_left_to_rbac() {
    let c = cluster(&[]).await;
    let others = [
        UserInfo::admin(),
        UserInfo::named(&sa("kube-egress-gateway-gateway-daemon"), Vec::new()),
        UserInfo::named("alice", vec!["system:masters".into()]),
        UserInfo::service_account_on_node(APP_NS, CNI_SA, "node-a"),
    ];
    for user in &others {
        denied(
            apply(&c.client(user), c.endpoint("web-a", "node-a").await).await,
            &format!(
                "only the CNI manager ({}) may create or change PodEndpoints, not {}",
                sa(CNI_SA),
                user.username
            ),
        );
    }
    let manager_a = c.client(&cni_manager(NAMESPACE, "node-a"));
    apply(&manager_a, c.endpoint("web-a", "node-a").await)
        .await
        .unwrap();
    // An administrator (or the garbage collector) deletes what RBAC lets it.
    Api::<PodEndpoint>::namespaced(c.admin.clone(), APP_NS)
        .delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
    let log = c.server.request_log().recent();
    let denials = log
        .iter()
        .filter(|r| r.resource == "podendpoints" && r.code == 403)
        .count();
    assert_eq!(denials, others.len());
}

#[tokio::test]
async fn tokens_without_the_node_claim_fall_back_to_the_daemons_check_unless_required() {
    let no_claim = UserInfo::named(&sa(CNI_SA), Vec::new());
    let c = cluster(&[]).await;
    apply(&c.client(&no_claim), c.endpoint("web-b", "node-b").await)
        .await
        .unwrap();

    let strict = cluster(&["podEndpointAdmission.requireNodeClaim=true"]).await;
    denied(
        apply(
            &strict.client(&no_claim),
            strict.endpoint("web-b", "node-b").await,
        )
        .await,
        "the CNI manager's token has no authentication.kubernetes.io/node-name claim (a legacy Secret token, or a cluster without ServiceAccountTokenPodNodeInfo) and podEndpointAdmission.requireNodeClaim is set",
    );
    apply(
        &strict.client(&cni_manager(NAMESPACE, "node-b")),
        strict.endpoint("web-b", "node-b").await,
    )
    .await
    .unwrap();
}

#[test]
fn the_policy_is_rendered_only_with_the_cni_manager_and_when_enabled() {
    // The PodEndpoint writers' policy and binding (the SGC warning policy is switched off).
    let count = |sets: &[&str]| {
        let mut sets = sets.to_vec();
        sets.push("sgcAdmission.enabled=false");
        let objs = helm::template_with_required(&sets).unwrap();
        all(&objs, "ValidatingAdmissionPolicy").count()
            + all(&objs, "ValidatingAdmissionPolicyBinding").count()
    };
    assert_eq!(count(&[]), 2);
    assert_eq!(count(&["podEndpointAdmission.enabled=false"]), 0);
    assert_eq!(count(&["cniManager.enabled=false"]), 0);
    let objs = helm::template_with_required(&[
        "podEndpointAdmission.validationActions={Warn,Audit}",
        "fullnameOverride=keg",
        "sgcAdmission.enabled=false",
    ])
    .unwrap();
    let binding = all(&objs, "ValidatingAdmissionPolicyBinding")
        .next()
        .unwrap();
    assert_eq!(
        binding["spec"]["validationActions"],
        json!(["Warn", "Audit"])
    );
    let policy = all(&objs, "ValidatingAdmissionPolicy").next().unwrap();
    assert!(
        policy.to_string().contains(&format!(
            "system:serviceaccount:{NAMESPACE}:keg-cni-manager"
        )),
        "the policy names the rendered ServiceAccount"
    );
}

#[test]
fn the_cni_manager_writes_the_label_the_policy_and_the_daemons_check() {
    assert_eq!(
        egress_cni_manager::handler::NODE_LABEL,
        egress_api::constants::POD_ENDPOINT_NODE_LABEL
    );
}
