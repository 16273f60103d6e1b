//! kubectl 1.32 round trips against the server: apply (create then unchanged), get -o yaml,
//! label, patch, wait, delete --wait, and printer columns in `kubectl get`.

use std::path::Path;

use crate::common::{Kubectl, fixture, start};

#[tokio::test]
async fn apply_get_label_patch_wait_delete() {
    let server = start().await;
    let k = Kubectl::new(&server);
    let manifest = fixture("manifests/widgets.yaml");
    let manifest = manifest.to_str().unwrap();
    let out = k.ok(&["apply", "-f", manifest]).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let out = k.ok(&["apply", "-f", manifest]).await;
    assert!(out.contains("widget.example.com/w1 unchanged"), "{out}");
    assert!(out.contains("configmap/settings unchanged"), "{out}");
    let yaml = k
        .ok(&["get", "wdg", "w1", "-n", "shop", "-o", "yaml"])
        .await;
    assert!(
        yaml.contains("size: 3") && yaml.contains("mode: Small"),
        "{yaml}"
    );
    k.ok(&["label", "widget", "w1", "-n", "shop", "color=red"])
        .await;
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "-n",
        "shop",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":4}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "-n",
        "shop",
        "-p",
        r#"{"data":{"size":"L"}}"#,
    ])
    .await;
    let table = k.ok(&["get", "wdg", "-A", "-l", "color=red"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAMESPACE", "NAME", "SIZE", "READY", "AGE"],
        "{table}"
    );
    assert!(table.lines().nth(1).unwrap().starts_with("shop"), "{table}");
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "-n",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ])
    .await;
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "widget/w1",
        "-n",
        "shop",
        "--timeout=10s",
    ])
    .await;
    let bad = k
        .run(&[
            "patch",
            "widget",
            "w1",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":0}}"#,
        ])
        .await;
    assert!(
        !bad.ok && bad.stderr.contains("spec.size"),
        "{}",
        bad.stderr
    );
    let out = k
        .ok(&[
            "delete",
            "widget",
            "w1",
            "-n",
            "shop",
            "--wait",
            "--timeout=20s",
        ])
        .await;
    assert!(out.contains("widget.example.com \"w1\" deleted"), "{out}");
    // The namespace goes once its remaining content (the ConfigMap) is cleaned up.
    let out = k
        .ok(&["delete", "namespace", "shop", "--wait", "--timeout=20s"])
        .await;
    assert!(out.contains("namespace \"shop\" deleted"), "{out}");
    let after = k.run(&["get", "ns", "shop"]).await;
    assert!(
        !after.ok && after.stderr.contains("NotFound"),
        "{}",
        after.stderr
    );
}

#[tokio::test]
async fn create_and_server_side_apply() {
    let server = start().await;
    let k = Kubectl::new(&server);
    let manifest = fixture("manifests/widgets.yaml");
    let manifest = manifest.to_str().unwrap();
    k.ok(&["create", "-f", manifest]).await;
    let again = k.run(&["create", "-f", manifest]).await;
    assert!(
        !again.ok && again.stderr.contains("AlreadyExists"),
        "{}",
        again.stderr
    );
    let out = k.ok(&["apply", "--server-side", "-f", manifest]).await;
    assert!(
        out.contains("widget.example.com/w1 serverside-applied"),
        "{out}"
    );
    let managed = k
        .ok(&[
            "get",
            "wdg",
            "w1",
            "-n",
            "shop",
            "-o",
            "yaml",
            "--show-managed-fields",
        ])
        .await;
    assert!(
        managed.contains("manager: kubectl") && managed.contains("operation: Apply"),
        "{managed}"
    );
    let names = k.ok(&["get", "all", "-n", "shop", "-o", "name"]).await;
    assert!(names.contains("widget.example.com/w1"), "{names}");
}

#[tokio::test]
async fn strict_validation_rejects_unknown_fields_from_kubectl() {
    let server = start().await;
    let k = Kubectl::new(&server);
    let dir = crate::common::TempDir::new();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: b\n  namespace: default\nspec:\n  size: 1\n  colour: red\n",
    )
    .unwrap();
    let out = k.run(&["apply", "-f", file.to_str().unwrap()]).await;
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains("unknown field \"spec.colour\""),
        "{}",
        out.stderr
    );
}

/// The project's CRDs and examples, when present: `kubectl apply -f examples/` then
/// `kubectl get sgc -A`.
#[tokio::test]
async fn project_crds_and_examples_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let crds = root.join("config/crd");
    let examples = root.join("examples");
    if !crds.is_dir() || !examples.is_dir() {
        eprintln!(
            "skipping: {} or {} not present",
            crds.display(),
            examples.display()
        );
        return;
    }
    let server = egress_apiserver::ApiServer::start(
        egress_apiserver::ServerConfig::default().with_crds(&crds),
    )
    .await
    .unwrap();
    let k = Kubectl::new(&server);
    let expected: usize = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .map(|text| text.matches("kind: StaticGatewayConfiguration").count())
        .sum();
    let out = k.ok(&["apply", "-f", examples.to_str().unwrap()]).await;
    assert!(out.contains("created"), "{out}");
    let again = k.ok(&["apply", "-f", examples.to_str().unwrap()]).await;
    assert!(
        !again.contains("configured"),
        "a second apply changes nothing: {again}"
    );
    let table = k.ok(&["get", "sgc", "-A"]).await;
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("NAMESPACE"), "{table}");
    assert_eq!(lines.count(), expected, "{table}");
}

/// `kubectl describe` of a custom resource lists its events through core/v1 (field selector on
/// `involvedObject.*`), including those kube's `Recorder` published through events.k8s.io/v1.
#[tokio::test]
async fn describe_shows_events_published_through_events_k8s_io() {
    use kube::Resource;
    use kube::api::{Api, DynamicObject, PostParams};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let server = start().await;
    let client = server.client().unwrap();
    let ar = crate::common::widget_resource();
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w = widgets
        .create(&PostParams::default(), &crate::common::widget("w1", 3))
        .await
        .unwrap();
    let reporter = Reporter {
        controller: "sgc-controller".into(),
        instance: Some("sgc-controller-0".into()),
    };
    let warning = Event {
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        note: Some("spec.size must be at most 2".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    Recorder::new(client.clone(), reporter)
        .publish(&warning, &w.object_ref(&ar))
        .await
        .unwrap();

    let k = Kubectl::new(&server);
    let out = k.ok(&["describe", "widget", "w1", "-n", "default"]).await;
    let events = out
        .split_once("Events:")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no Events section: {out}"));
    let row = events
        .lines()
        .find(|l| l.contains("InvalidSpec"))
        .unwrap_or_else(|| panic!("no InvalidSpec event: {out}"));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"Warning"), "{row}");
    assert!(row.contains("sgc-controller"), "From column: {row}");
    assert!(row.contains("spec.size must be at most 2"), "{row}");
    // A widget without events says so.
    widgets
        .create(&PostParams::default(), &crate::common::widget("w2", 3))
        .await
        .unwrap();
    let out = k.ok(&["describe", "widget", "w2", "-n", "default"]).await;
    assert!(out.contains("Events:") && out.contains("<none>"), "{out}");
}
