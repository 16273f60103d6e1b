//! `egress-sim down` after the simulator was killed: every namespace, process and file of the
//! run goes, and a second `down` finds nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{self, eventually, namespaces_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_after_a_crash_removes_every_namespace_process_and_file() {
    let Some(lab) = common::lab("down after crash") else {
        return;
    };
    let scenario = common::write_scenario(
        &lab,
        "small.yaml",
        "workers: 1\ngatewayPools: [{name: gwpool, vmssName: gw-vmss, resourceGroup: rg-nodes, instances: 1, prefixSize: 31}]\n\
         manifests: |\n  apiVersion: v1\n  kind: Pod\n  metadata: {name: p, namespace: default}\n  spec: {containers: [{name: c, image: x}]}\n",
    );
    let exe = env!("CARGO_BIN_EXE_egress-sim");
    let mut up = Command::new(exe)
        .args(["up", scenario.to_str().unwrap()])
        .env("EGRESS_SIM_STATE_DIR", &lab.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(up.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.trim().ends_with("kubeconfig"),
        "up prints the kubeconfig path, got {line:?}"
    );
    let runs = egress_sim::state::list_runs(&lab.root).unwrap();
    assert_eq!(runs.len(), 1);
    let kubectl = Command::new("kubectl")
        .args(["--kubeconfig", line.trim(), "--cache-dir"])
        .arg(lab.root.parent().unwrap().join("kube-cache"))
        .args(["get", "nodes", "-o", "name"])
        .output()
        .unwrap();
    let nodes = String::from_utf8_lossy(&kubectl.stdout);
    assert!(
        nodes.contains("node/gw-vmss000000") && nodes.contains("node/aks-nodepool1-vmss000000"),
        "{nodes}"
    );
    let pod_ready = || {
        egress_sim::state::list_runs(&lab.root)
            .map(|r| {
                r.first()
                    .is_some_and(|(_, s)| s.namespaces.iter().any(|n| n.contains("-p")))
            })
            .unwrap_or(false)
    };
    eventually(
        "the kubelet to create a pod namespace",
        Duration::from_secs(30),
        pod_ready,
    )
    .await;
    let run = egress_sim::state::list_runs(&lab.root).unwrap().remove(0).1;

    up.kill().unwrap();
    up.wait().unwrap();
    assert!(
        !namespaces_with(&run.id).is_empty(),
        "the crash leaves the namespaces"
    );

    let status = Command::new(exe)
        .arg("down")
        .env("EGRESS_SIM_STATE_DIR", &lab.root)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        namespaces_with(&run.id).is_empty(),
        "left: {:?}",
        namespaces_with(&run.id)
    );
    for p in &run.processes {
        assert!(!egress_sim::state::is_alive(p), "{} still runs", p.name);
    }
    assert!(
        egress_sim::state::list_runs(&lab.root).unwrap().is_empty(),
        "state left behind"
    );
    let again = Command::new(exe)
        .arg("down")
        .env("EGRESS_SIM_STATE_DIR", &lab.root)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to remove"));
}
