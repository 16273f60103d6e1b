//! The walkthrough of docs/simulator.md (the AKS article's steps), run as a user would: the
//! `egress-sim up` binary, then every `sh` block of the doc's "Walkthrough" section, unchanged
//! and in order, by bash with kubectl (no other client), each block's output checked. A doc
//! edit that adds, removes or reorders a block must change the checks here (their count is
//! compared), so the documented commands are the tested ones.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common;

/// The `sh` blocks of the walkthrough section.
fn doc_blocks() -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../docs/simulator.md"),
    )
    .unwrap();
    let start = doc
        .find("## Walkthrough")
        .expect("docs/simulator.md has a Walkthrough section");
    let rest = &doc[start + 2..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Runs one block with bash in `dir` against `kubeconfig`; fails the test with its output.
fn run(dir: &Path, kubeconfig: &str, block: &str) -> String {
    let out = Command::new("timeout")
        .args(["300", "bash", "-euo", "pipefail", "-c", block])
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "walkthrough step failed ({}):\n{block}\n---\n{text}",
        out.status
    );
    text
}

/// A web server in the nginx pod on its localhost:8080, reached through `kubectl port-forward`
/// by two concurrent requests.
const PORT_FORWARD: &str = r#"
trap 'kill $pf $server 2>/dev/null || true' EXIT
pf=; server=
kubectl exec nginx -n demo -- python3 -m http.server 8080 --bind 127.0.0.1 --directory / >/dev/null 2>server.log &
server=$!
up=false
for _ in $(seq 150); do
  if kubectl exec nginx -n demo -- python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8080))' 2>/dev/null; then up=true; break; fi
  sleep 0.2
done
$up
: >pf.log
kubectl port-forward pod/nginx -n demo :8080 >>pf.log 2>&1 &
pf=$!
port=""
for _ in $(seq 300); do
  port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) -> 8080$/\1/p' pf.log)
  [ -n "$port" ] && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/" >a.html & a=$!
curl -sf "http://127.0.0.1:$port/" >b.html & b=$!
wait $a $b
for f in a.html b.html; do grep -q 'Directory listing for /' "$f" && echo "$f: a listing of the pod's /"; done
"#;

/// The address of every `IP` (ifconfig.me) or `IP:port` (192.0.2.1) line the echo server
/// answered.
fn echoed(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let l = l.trim();
            l.rsplit_once(':')
                .filter(|(_, port)| port.parse::<u16>().is_ok())
                .map_or(l, |(ip, _)| ip)
        })
        .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aks_walkthrough_runs_verbatim_with_kubectl() {
    let Some(lab) = common::lab("walkthrough") else {
        return;
    };
    let blocks = doc_blocks();
    assert_eq!(
        blocks.len(),
        9,
        "the walkthrough's sh blocks changed: update the checks"
    );
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/walkthrough.yaml");
    let mut up = Command::new(env!("CARGO_BIN_EXE_egress-sim"))
        .args(["up", scenario.to_str().unwrap()])
        .env("EGRESS_SIM_STATE_DIR", &lab.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut kubeconfig = String::new();
    BufReader::new(up.stdout.take().unwrap())
        .read_line(&mut kubeconfig)
        .unwrap();
    let kubeconfig = kubeconfig.trim().to_string();
    assert!(
        kubeconfig.ends_with("kubeconfig"),
        "up printed {kubeconfig:?}"
    );
    let dir = lab.root.parent().unwrap().join("user");
    std::fs::create_dir_all(&dir).unwrap();
    let step = |i: usize| run(&dir, &kubeconfig, &blocks[i]);

    // 1. Nodes with the gateway pool, the components' pods.
    let out = step(0);
    assert_eq!(
        out.lines().filter(|l| l.contains(" Ready ")).count(),
        4,
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_end().ends_with("gateway"))
            .count(),
        2,
        "{out}"
    );
    for role in ["operator", "gateway-daemon", "cni-manager"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("kube-egress-gateway-{role}-"))
                    && l.contains("1/1")
                    && l.contains("Running")),
            "{role}: {out}"
        );
    }
    // 2.-3. Namespace and configuration (kubectl create sends protobuf).
    assert!(step(1).contains("namespace/demo created"));
    assert!(step(2).contains("staticgatewayconfiguration.egressgateway.kubernetes.azure.com/my-static-egress-gateway created"));
    // 4. Provisioned, with its prefix.
    let out = step(3);
    assert!(
        out.contains("condition met") && out.contains("Egress Ip Prefix:"),
        "{out}"
    );
    let prefix = out
        .lines()
        .find(|l| l.starts_with("my-static-egress-gateway "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no prefix in {out}"))
        .to_string();
    // 5. A Deployment and a pod, annotated.
    let out = step(4);
    assert!(
        out.contains("deployment \"web\" successfully rolled out")
            && out.contains("pod/nginx condition met"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.contains(" 1/1 ") && l.contains("Running"))
            .count(),
        3,
        "{out}"
    );
    // 6. Their egress IP is in the prefix; a pod without the annotation leaves as the outbound IP.
    let out = step(5);
    let ips = echoed(&out);
    assert_eq!(ips.len(), 3, "{out}");
    for ip in &ips[..2] {
        assert!(
            egress_sim::report::in_prefix(ip, &prefix),
            "{ip} is not in {prefix}: {out}"
        );
    }
    assert_eq!(ips[2], egress_sim::seed::OUTBOUND_IP.to_string(), "{out}");
    // Beyond the doc: exec carries stdin, stderr and the exit code as kubectl expects, and the
    // command runs in the pod's network namespace under the pod's host name.
    let out = Command::new("bash")
        .args([
            "-c",
            "echo from-stdin | kubectl exec -i nginx -n demo -- sh -c 'cat; hostname; ip -4 -o addr show eth0; echo to-stderr >&2; exit 3'",
        ])
        .current_dir(&dir)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", &dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    let pod_ip = run(
        &dir,
        &kubeconfig,
        "kubectl get pod nginx -n demo -o jsonpath='{.status.podIP}'",
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("from-stdin"), "{stdout}");
    assert_eq!(lines.next(), Some("nginx"), "{stdout}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.contains(&format!(" {pod_ip}/"))),
        "{pod_ip}: {stdout}"
    );
    assert!(stderr.contains("to-stderr"), "{stderr}");
    // Beyond the doc: `kubectl port-forward` reaches a server that listens on the pod's
    // localhost only (started with kubectl exec, and stopped when that exec ends), from two
    // connections at once.
    let out = run(&dir, &kubeconfig, PORT_FORWARD);
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with(": a listing of the pod's /"))
            .count(),
        2,
        "{out}"
    );
    // 7. Scaled through the scale subresource.
    let out = step(6);
    assert!(out.contains("deployment.apps/web   3/3"), "{out}");
    // 8. A pod that cannot start says why.
    let out = step(7);
    assert!(out.contains("ContainerCreating"), "{out}");
    assert!(
        out.contains("FailedCreatePodSandBox") && out.contains("does-not-exist"),
        "{out}"
    );
    // `get events` lists them too (its OBJECT column; describe's Events table has none).
    for reason in ["Scheduled", "FailedCreatePodSandBox"] {
        assert!(
            out.lines()
                .any(|l| l.contains(reason) && l.contains("pod/broken")),
            "kubectl get events: {reason}: {out}"
        );
    }
    for reason in ["Scheduled", "Started", "Created"] {
        assert!(out.contains(reason), "{reason}: {out}");
    }
    assert!(
        out.contains("CNI ADD failed"),
        "the pod's kubelet log: {out}"
    );
    assert!(out.contains("egress_operator"), "the operator's log: {out}");
    // Beyond the doc: every component's pod shows its log, whichever stream it writes (the
    // cni-manager logs to stdout, the others to stderr).
    for (component, target) in [
        ("cni-manager", "egress_cni_manager"),
        ("gateway-daemon", "egress_gateway_daemon"),
    ] {
        let out = run(
            &dir,
            &kubeconfig,
            &format!(
                "kubectl logs -n kube-egress-gateway-system -l app.kubernetes.io/component={component} --tail=-1"
            ),
        );
        assert!(out.contains(target), "the {component}'s log: {out}");
    }
    // 9. Clean up.
    let out = step(8);
    assert!(out.contains("namespace \"demo\" deleted"), "{out}");

    // Stopped as ctrl-c stops it: everything torn down.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = up.wait().unwrap();
    assert!(status.success(), "up exited with {status}");
    assert!(
        egress_sim::state::list_runs(&lab.root).unwrap().is_empty(),
        "the run was not removed"
    );
}
