//! The images run: the demo scenario on the simulator twice, first with the host binaries,
//! then with `--images` (the operator, every cni-manager and gateway daemon as podman
//! containers of the built images, the plugin installed by the chart's init container from
//! its image, the gateway namespaces created by the daemon image's init container). While the
//! image run is up, every container answers /healthz (the operator also /readyz against the
//! API server and the Azure emulator), the plugin in the CNI bin directory is the image's
//! static binary, each manager wrote its conflist into the host directory, and each daemon
//! programmed its gateway namespace. Both runs give the same report. Needs root, podman and
//! built images (SKIPPED otherwise; CI=true turns a skip into a failure).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use egress_images::{built_images, images_dir};
use egress_sim::cluster::Cluster;
use egress_sim::podman::Podman;
use egress_sim::report::Report;
use egress_sim::scenario::Scenario;
use serde_json::Value;

fn may_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        let why = "the podman tests need root (network namespaces, privileged containers)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("SKIPPED: {why}");
        return false;
    }
    built_images()
}

fn demo() -> PathBuf {
    egress_images::workspace_root().join("crates/testing/egress-sim/scenarios/demo.yaml")
}

/// `GET path` over HTTP/1.0 to `addr`, from inside network namespace `ns` (or the host); the
/// status code.
fn http_status(ns: Option<&str>, addr: SocketAddr, path: &str) -> Option<u16> {
    let path = path.to_string();
    let get = move || -> Option<u16> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.split_whitespace().nth(1)?.parse().ok()
    };
    match ns {
        Some(ns) => egress_sim::netns::in_netns(ns, get).ok().flatten(),
        None => get(),
    }
}

/// The comparable part of a report: SGCs as they are; pods without the per-run parts of a
/// Deployment's pod names, the node the kubelet happened to pick, the timing, and which of
/// its prefix's addresses the load balancer's hash picked (`inPrefix` keeps that it is one).
fn comparable(r: &Report) -> Value {
    let mut pods: Vec<Value> = r
        .pods
        .iter()
        .map(|p| {
            // A Deployment's pods are <deployment>-<10-character hash>-<5 random characters>.
            let parts: Vec<&str> = p.name.rsplitn(3, '-').collect();
            let name = match parts.as_slice() {
                [suffix, hash, stem] if suffix.len() == 5 && hash.len() == 10 => {
                    format!("{stem}-*")
                }
                _ => p.name.clone(),
            };
            let egress = if p.in_prefix == Some(true) {
                Some("<in prefix>".to_string())
            } else {
                p.egress_ip.clone()
            };
            serde_json::json!({"namespace": p.namespace, "name": name, "sgc": p.sgc,
                "egressIp": egress, "inPrefix": p.in_prefix, "error": p.error})
        })
        .collect();
    pods.sort_by_key(|p| p.to_string());
    let mut sgcs = serde_json::to_value(&r.sgcs).unwrap();
    if let Some(list) = sgcs.as_array_mut() {
        list.sort_by_key(|s| s.to_string());
    }
    serde_json::json!({"outboundIp": r.outbound_ip, "sgcs": sgcs, "pods": pods})
}

async fn run(root: &Path, images: Option<&Path>) -> Report {
    let path = demo();
    let scenario = Scenario::load(&path).unwrap();
    let timeout = Duration::from_secs(u64::from(scenario.ready_timeout_seconds) + 60);
    let mut cluster = Cluster::up_with(scenario, &path, root, images)
        .await
        .unwrap();
    let ready = egress_sim::cli::wait_ready(&cluster, timeout).await;
    let checked = if images.is_some() && ready.is_ok() {
        check_containers(&cluster).await
    } else {
        Ok(())
    };
    let processes = cluster.check_processes();
    let report = egress_sim::cli::measure(&cluster).await;
    let run_dir = cluster.run_dir();
    let teardown = cluster.down().await;
    ready.unwrap();
    checked.unwrap();
    processes.unwrap();
    assert!(teardown.problems.is_empty(), "{:?}", teardown.problems);
    assert!(
        !run_dir.exists(),
        "the run directory (and podman storage) is gone"
    );
    report.unwrap()
}

/// Arguments of every running container of the run: name -> (image, command line).
fn containers(cluster: &Cluster) -> Vec<(String, String, Vec<String>)> {
    let podman = Podman::new(&egress_sim::images::storage_dir(&cluster.run_dir()));
    let out = podman
        .run("ps", &["ps".into(), "--format".into(), "json".into()])
        .unwrap();
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    list.iter()
        .map(|c| {
            let name = c["Names"][0].as_str().unwrap().to_string();
            let image = c["Image"].as_str().unwrap().to_string();
            let command = c["Command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            (name, image, command)
        })
        .collect()
}

/// The value of `name` in a command line, as `--name value` or `--name=value`.
fn flag(command: &[String], name: &str) -> Option<String> {
    let joined = format!("{name}=");
    if let Some(v) = command.iter().find_map(|a| a.strip_prefix(&joined)) {
        return Some(v.to_string());
    }
    let i = command.iter().position(|a| a == name)?;
    command.get(i + 1).cloned()
}

async fn check_containers(cluster: &Cluster) -> Result<(), String> {
    let running = containers(cluster);
    let nodes = &cluster.topo.nodes;
    let gateways: Vec<_> = nodes
        .iter()
        .filter(|n| n.spec.role == egress_sim::seed::Role::Gateway)
        .collect();
    let workers: Vec<_> = nodes
        .iter()
        .filter(|n| n.spec.role == egress_sim::seed::Role::Worker)
        .collect();
    // The daemon's image also runs each gateway node's lb-probe keeper (its own container,
    // as in the chart): tell them apart by their first argument.
    let is_keeper =
        |c: &(String, String, Vec<String>)| c.2.first().is_some_and(|a| a == "lb-probe");
    let of = |image: &str| -> Vec<&(String, String, Vec<String>)> {
        running
            .iter()
            .filter(|c| c.1.contains(image) && !is_keeper(c))
            .collect()
    };
    let keepers = running.iter().filter(|c| is_keeper(c)).count();
    let count = |image: &str, want: usize| {
        let n = of(image).len();
        if n == want {
            Ok(())
        } else {
            Err(format!(
                "{n} containers of {image}, want {want}: {running:?}"
            ))
        }
    };
    count("egress-operator:", 1)?;
    count("egress-cni-manager:", workers.len())?;
    count("egress-gateway-daemon:", gateways.len())?;
    if keepers != gateways.len() {
        return Err(format!(
            "{keepers} lb-probe containers, want {}: {running:?}",
            gateways.len()
        ));
    }

    // The operator: host network, health address on the host loopback.
    let op = of("egress-operator:")[0];
    let health: SocketAddr = flag(&op.2, "--health-addr").unwrap().parse().unwrap();
    for path in ["/healthz", "/readyz"] {
        let status = http_status(None, health, path);
        if status != Some(200) {
            return Err(format!("operator {path}: {status:?}"));
        }
    }
    // Managers: the port of their --http-addr (the chart's) on each worker namespace's
    // loopback; their conflist on the host side.
    for w in &workers {
        let Some(manager) = of("egress-cni-manager:")
            .into_iter()
            .find(|c| c.0.ends_with(&w.spec.name))
        else {
            return Err(format!(
                "no cni-manager container for {}: {running:?}",
                w.spec.name
            ));
        };
        let addr: SocketAddr = flag(&manager.2, "--http-addr").unwrap().parse().unwrap();
        let local = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        let status = http_status(Some(&w.ns), local, "/healthz");
        if status != Some(200) {
            return Err(format!(
                "cni-manager on {}: /healthz {status:?}",
                w.spec.name
            ));
        }
        let (conf_dir, _) = egress_sim::kubelet::cni_paths(&cluster.run_dir(), &w.spec.name);
        if !conf_dir.join("01-egressgateway.conflist").is_file() {
            return Err(format!("no conflist in {}", conf_dir.display()));
        }
    }
    // Daemons: the default health address (0.0.0.0:8081) in each gateway node's namespace,
    // and a programmed gateway namespace (WireGuard link, nftables table).
    for g in &gateways {
        let status = http_status(Some(&g.ns), "127.0.0.1:8081".parse().unwrap(), "/healthz");
        if status != Some(200) {
            return Err(format!(
                "gateway daemon on {}: /healthz {status:?}",
                g.spec.name
            ));
        }
        let state = cluster
            .node_state(&g.spec.name)
            .map_err(|e| e.to_string())?;
        let gw = egress_sim::components::gateway_netns(g);
        if !state.contains(&format!("# {gw}: nft list ruleset")) || !state.contains("wg-") {
            return Err(format!("gateway {gw} not programmed:\n{state}"));
        }
    }
    // The plugin the install-plugin init container copied: a real file, the image's static one.
    let plugin = cluster.run_dir().join("cni-bin/kube-egress-cni");
    let meta = std::fs::symlink_metadata(&plugin).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err(format!("{} is not a copied file", plugin.display()));
    }
    let version = std::process::Command::new(&plugin)
        .env("CNI_COMMAND", "VERSION")
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&version.stdout).contains("supportedVersions") {
        return Err(format!(
            "the copied plugin does not run on the host: {version:?}"
        ));
    }
    eprintln!(
        "checked {} containers: operator /healthz /readyz, {} cni-managers /healthz + conflist, \
         {} gateway daemons /healthz + gateway namespace, the installed plugin",
        running.len(),
        workers.len(),
        gateways.len()
    );
    Ok(())
}

/// Removes every run under the state root when the test ends, also when it panics.
struct Runs(PathBuf);

impl Drop for Runs {
    fn drop(&mut self) {
        let _ = egress_sim::cli::down(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_from_the_images_gives_the_report_of_the_host_binaries() {
    if !may_run() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    let _runs = Runs(root.clone());
    let host = run(&root, None).await;
    assert!(
        host.problems().is_empty(),
        "host run: {:?}",
        host.problems()
    );
    let images = images_dir();
    let from_images = run(&root, Some(&images)).await;
    assert!(
        from_images.problems().is_empty(),
        "image run: {:?}",
        from_images.problems()
    );
    assert_eq!(comparable(&from_images), comparable(&host));
}
