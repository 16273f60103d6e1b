//! The deployment and replicaset controllers as kubectl sees them: `create deployment` makes a
//! ReplicaSet (`<name>-<pod-template-hash>`) and its pods (owner references, the hash label),
//! `rollout status` waits for ready pods, `scale` (the scale subresource) and `spec.replicas`
//! add and remove pods, `set image` rolls to a new ReplicaSet and empties the old one, and
//! `get` prints the real columns. A test stands in for the kubelet by marking pods ready.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::common::{Kubectl, raw, start, wait_for};

/// Marks every pod of the namespace ready, as a kubelet would.
async fn kubelet_pass(pods: &Api<Pod>) {
    for p in pods.list(&ListParams::default()).await.unwrap() {
        let name = p.metadata.name.unwrap();
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0, "image": "nginx",
                                   "imageID": "", "state": {"running": {}}}]}});
        let _ = pods
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&ready))
            .await;
    }
}

async fn pod_names(pods: &Api<Pod>) -> Vec<String> {
    let mut names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn deployments_create_scale_and_roll_out_through_replicasets() {
    let server = start().await;
    let k = Kubectl::new(&server);
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), "default");
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])
    .await;
    let names = wait_for(10, "2 pods", || async {
        let n = pod_names(&pods).await;
        (n.len() == 2).then_some(n)
    })
    .await;
    let rs = k
        .ok(&[
            "get",
            "rs",
            "-o",
            "jsonpath={.items[0].metadata.name} {.items[0].metadata.ownerReferences[0].kind}",
        ])
        .await;
    let (rs_name, owner) = rs.split_once(' ').unwrap();
    assert_eq!(owner, "Deployment");
    let hash = rs_name.strip_prefix("web-").unwrap();
    assert_eq!(hash.len(), 10, "{rs_name}");
    for n in &names {
        assert!(
            n.starts_with(&format!("{rs_name}-")) && n.len() == rs_name.len() + 6,
            "{n}"
        );
        let p = pods.get(n).await.unwrap();
        assert_eq!(p.metadata.labels.unwrap()["pod-template-hash"], hash);
        assert_eq!(p.metadata.owner_references.unwrap()[0].name, rs_name);
    }
    let waiting = k
        .run(&["rollout", "status", "deployment/web", "--timeout=1s"])
        .await;
    assert!(
        !waiting.ok
            && waiting
                .stdout
                .contains("0 of 2 updated replicas are available"),
        "{}",
        waiting.stdout
    );
    kubelet_pass(&pods).await;
    let done = k
        .ok(&["rollout", "status", "deployment/web", "--timeout=20s"])
        .await;
    assert!(
        done.contains("deployment \"web\" successfully rolled out"),
        "{done}"
    );
    let table = k.ok(&["get", "pods"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert!(
        table.lines().nth(1).unwrap().contains(" 1/1 ") && table.contains("Running"),
        "{table}"
    );
    let deploys = k.ok(&["get", "deploy"]).await;
    assert!(
        deploys.starts_with("NAME   READY   UP-TO-DATE   AVAILABLE   AGE"),
        "{deploys}"
    );
    assert!(
        deploys.contains("web    2/2     2            2"),
        "{deploys}"
    );

    // Scale up through the scale subresource, then down.
    k.ok(&["scale", "deployment", "web", "--replicas=4"]).await;
    wait_for(10, "4 pods", || async {
        (pod_names(&pods).await.len() == 4).then_some(())
    })
    .await;
    k.ok(&["scale", "deployment", "web", "--replicas=1"]).await;
    wait_for(10, "1 pod", || async {
        (pod_names(&pods).await.len() == 1).then_some(())
    })
    .await;
    // The controllers say what they did, as kube-controller-manager's do.
    let described = k.ok(&["describe", "deployment", "web"]).await;
    for line in [
        "ScalingReplicaSet  ".to_string(),
        format!("Scaled up replica set {rs_name} from 0 to 2"),
        format!("Scaled up replica set {rs_name} from 2 to 4"),
        format!("Scaled down replica set {rs_name} from 4 to 1"),
    ] {
        assert!(described.contains(&line), "{line}: {described}");
    }
    let described = k.ok(&["describe", "rs", rs_name]).await;
    assert!(
        described.contains("SuccessfulCreate") && described.contains("SuccessfulDelete"),
        "{described}"
    );
    let rs_table = k.ok(&["get", "rs"]).await;
    assert!(
        rs_table.starts_with("NAME") && rs_table.contains("DESIRED   CURRENT   READY"),
        "{rs_table}"
    );
    let (code, _, body) = raw(
        &server,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        &[],
        None,
    )
    .await;
    assert_eq!(code, 200);
    let scale: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(1))
    );
    assert_eq!(scale["status"]["selector"], "app=web");

    // A new template rolls out to a new ReplicaSet; the old one ends at 0.
    kubelet_pass(&pods).await;
    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"])
        .await;
    let new_rs = wait_for(10, "a second ReplicaSet", || async {
        let out = k.ok(&["get", "rs", "-o", "name"]).await;
        (out.lines().count() == 2).then_some(out)
    })
    .await;
    assert!(new_rs.contains(rs_name));
    for _ in 0..20 {
        kubelet_pass(&pods).await;
        let out = k
            .run(&["rollout", "status", "deployment/web", "--timeout=1s"])
            .await;
        if out.ok {
            break;
        }
    }
    let done = k
        .ok(&["rollout", "status", "deployment/web", "--timeout=5s"])
        .await;
    assert!(done.contains("successfully rolled out"), "{done}");
    let old = k
        .ok(&[
            "get",
            "rs",
            rs_name,
            "-o",
            "jsonpath={.spec.replicas}/{.status.replicas}",
        ])
        .await;
    assert_eq!(old, "0/0");
    let images: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            p.spec.unwrap().containers[0]
                .image
                .clone()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(images, vec!["nginx:1.27"]);
    let history = k.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );

    // Deleting the Deployment removes its ReplicaSets and pods.
    k.ok(&["delete", "deployment", "web"]).await;
    wait_for(10, "no pods", || async {
        pod_names(&pods).await.is_empty().then_some(())
    })
    .await;
}
