//! Keeps the VNet router in step with the emulator: a loop that reads the emulator's load
//! balancers, IP mappings and NIC addresses, routes secondary IPs to their nodes, rewrites the
//! edge NAT and load-balancer rulesets when they change, and a health prober that runs inside
//! the router namespace (source 168.63.129.16, as Azure's probes) every probe interval.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::fabric::{self, LbRule, Probe};
use crate::netns;
use crate::seed;
use crate::services;
use crate::topology::{EDGE_IF, Topology};

/// Health of (probe key, backend IP).
pub type Health = BTreeMap<(String, Ipv4Addr), bool>;

/// Probe targets: (probe, backend IP).
pub type Targets = BTreeSet<(Probe, Ipv4Addr)>;

/// Starts the prober thread inside the router namespace. It probes `targets` every
/// `interval` and publishes results; it ends when `stop` is set.
pub fn start_prober(
    vnet: &str,
    interval: Duration,
    targets: watch::Receiver<Targets>,
    stop: Arc<AtomicBool>,
) -> Result<watch::Receiver<Health>, netns::NetnsError> {
    let (tx, rx) = watch::channel(Health::new());
    let file = std::fs::File::open(netns::path(vnet)).map_err(|e| netns::NetnsError::Enter {
        name: vnet.to_string(),
        reason: e.to_string(),
    })?;
    std::thread::spawn(move || {
        if nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            return;
        }
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            while !stop.load(Ordering::Relaxed) {
                let current: Vec<(Probe, Ipv4Addr)> = targets.borrow().iter().cloned().collect();
                let checks = current.iter().map(|(p, ip)| async move {
                    let ok = probe_once(*ip, p, interval.min(Duration::from_secs(2))).await;
                    ((fabric::probe_key(p), *ip), ok)
                });
                let results: Health = futures::future::join_all(checks)
                    .await
                    .into_iter()
                    .collect();
                tx.send_if_modified(|h| {
                    let changed = *h != results;
                    *h = results;
                    changed
                });
                tokio::time::sleep(interval).await;
            }
        });
    });
    Ok(rx)
}

/// One HTTP probe: 200 within `timeout` = healthy.
async fn probe_once(ip: Ipv4Addr, probe: &Probe, timeout: Duration) -> bool {
    let attempt = async {
        let sock = tokio::net::TcpSocket::new_v4().ok()?;
        sock.bind(SocketAddr::from((seed::PROBE_SOURCE_IP, 0)))
            .ok()?;
        let stream = sock
            .connect(SocketAddr::from((ip, probe.port)))
            .await
            .ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .uri(&probe.path)
            .header("host", format!("{ip}:{}", probe.port))
            .body(Full::new(Bytes::new()))
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        Some(resp.status() == hyper::StatusCode::OK)
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}

/// What the sync loop last applied.
#[derive(Debug, Default)]
struct Applied {
    edge: String,
    edge6: String,
    ilb: String,
    routed: BTreeSet<(String, std::net::IpAddr)>,
}

/// Runs the sync loop until `stop` is set: every `period`, and whenever health changes.
pub async fn run_sync(
    topo: Arc<Topology>,
    emulator: SocketAddr,
    period: Duration,
    targets: watch::Sender<Targets>,
    mut health: watch::Receiver<Health>,
    stop: Arc<AtomicBool>,
    last_rules: Arc<std::sync::Mutex<Vec<LbRule>>>,
) {
    let mut applied = Applied::default();
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = sync_once(
            &topo,
            emulator,
            &targets,
            &mut health,
            &mut applied,
            &last_rules,
        )
        .await
        {
            tracing::warn!(error = %e, "fabric sync failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            changed = health.changed() => {
                if changed.is_err() {
                    // The prober is gone (the simulator is stopping): nothing moves flows any
                    // more, and a closed channel would wake this loop at once for ever.
                    return;
                }
                // A health change moves flows at once, from the rules already known, as a
                // load balancer's data path acts on its probes without asking ARM (the full
                // sync takes three emulator requests and several processes first).
                let rules = last_rules.lock().map(|r| r.clone()).unwrap_or_default();
                if let Err(e) = apply_ilb(&topo, &rules, &mut health, &mut applied) {
                    tracing::warn!(error = %e, "load balancer update failed");
                }
            }
        }
    }
}

async fn fetch(emulator: SocketAddr, path: &str) -> Result<serde_json::Value, String> {
    let (status, body) = services::get(emulator, path).await?;
    if status != 200 {
        return Err(format!("GET {path}: status {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))
}

/// The load balancer's rules for `rules` and the current health, applied when they changed
/// (the health is marked seen).
fn apply_ilb(
    topo: &Topology,
    rules: &[LbRule],
    health: &mut watch::Receiver<Health>,
    applied: &mut Applied,
) -> Result<(), String> {
    let mark_of = |ip: Ipv4Addr| topo.node_by_ip(ip).map(|n| n.mark);
    let ilb = fabric::ilb_ruleset(rules, &health.borrow_and_update(), &mark_of);
    if ilb != applied.ilb {
        netns::nft(&topo.vnet, &ilb).map_err(|e| e.to_string())?;
        tracing::info!("load balancer rules updated");
        applied.ilb = ilb;
    }
    Ok(())
}

async fn sync_once(
    topo: &Topology,
    emulator: SocketAddr,
    targets: &watch::Sender<Targets>,
    health: &mut watch::Receiver<Health>,
    applied: &mut Applied,
    last_rules: &std::sync::Mutex<Vec<LbRule>>,
) -> Result<(), String> {
    let rules = fabric::parse_lbmap(&fetch(emulator, "/admin/lbmap").await?);
    let inventory = fetch(emulator, "/admin/inventory").await?;
    let ipmap = fetch(emulator, "/admin/ipmap").await?;
    let mappings = fabric::parse_ipmap::<Ipv4Addr>(&ipmap);
    let wanted: BTreeSet<(String, std::net::IpAddr)> = fabric::parse_instance_ips(&inventory)
        .into_iter()
        .filter_map(|(vmss, i, ip)| {
            let node = topo
                .nodes
                .iter()
                .find(|n| n.spec.vmss.eq_ignore_ascii_case(&vmss) && n.spec.instance == i)?;
            Some((node.spec.name.clone(), ip))
        })
        .collect();
    applied.routed = topo
        .route_secondaries(&wanted, &applied.routed)
        .map_err(|e| e.to_string())?;

    let edge = fabric::edge_ruleset(
        EDGE_IF,
        &mappings,
        &Topology::inside_cidrs(),
        seed::OUTBOUND_IP,
    );
    if edge != applied.edge {
        netns::nft(&topo.vnet, &edge).map_err(|e| e.to_string())?;
        applied.edge = edge;
    }
    if topo.dual_stack {
        let edge6 = fabric::edge_ruleset(
            EDGE_IF,
            &fabric::parse_ipmap::<std::net::Ipv6Addr>(&ipmap),
            &Topology::inside6_cidrs(),
            seed::OUTBOUND_IP6,
        );
        if edge6 != applied.edge6 {
            netns::nft(&topo.vnet, &edge6).map_err(|e| e.to_string())?;
            applied.edge6 = edge6;
        }
    }
    let new_targets: Targets = rules
        .iter()
        .filter_map(|r| r.probe.clone().map(|p| (p, r)))
        .flat_map(|(p, r)| r.backends.iter().map(move |b| (p.clone(), *b)))
        .collect();
    targets.send_if_modified(|t| {
        let changed = *t != new_targets;
        *t = new_targets;
        changed
    });
    apply_ilb(topo, &rules, health, applied)?;
    if let Ok(mut l) = last_rules.lock() {
        *l = rules;
    }
    Ok(())
}
