//! Peer-programming benchmark in throwaway namespaces (run as root): time to program 1,000 and
//! 10,000 peers on a cold gateway node, and the marginal cost of adding and removing one peer
//! when 0, 1,000 or 10,000 exist, for each WireGuard backend named in
//! `EGRESS_BENCH_BACKENDS` (default `userspace`; `make bench` also runs
//! `userspace,kernel` inside User-Mode Linux, so both appear side by side from one run).
//!
//! `cargo bench -p egress-dataplane --bench peers`; prints Markdown tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_dataplane::control::LinkControl;
use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::netns;
use egress_dataplane::state::GatewayTunnel;
use egress_dataplane::{
    AddressSpec, Dataplane, GatewayNodeState, InterfaceName, NetnsName, NetnsRef, Op, Peer,
    PrivateKey, RouteSpec, WgDeviceId, observe_request_for_gateway_node, plan_gateway_node,
};
use egress_testkit::{Backend, WireGuardExecutor};

const REPEAT: usize = 21;

struct Bench {
    node: NetnsName,
    gateway: NetnsName,
    links: Arc<NetlinkLinks>,
    wireguard: WireGuardExecutor,
    dp: Dataplane,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.wireguard.stop_all_started();
        for ns in [&self.gateway, &self.node] {
            self.links.forget(&NetnsRef::Named(ns.clone()));
            let _ = netns::delete_netns(ns);
        }
    }
}

/// The backends to measure, from `EGRESS_BENCH_BACKENDS` (comma-separated).
fn backends() -> Vec<Backend> {
    let list = std::env::var("EGRESS_BENCH_BACKENDS").unwrap_or_else(|_| "userspace".into());
    list.split(',')
        .map(|b| match b.trim() {
            "userspace" => Backend::Userspace,
            "kernel" => Backend::Kernel,
            other => panic!("EGRESS_BENCH_BACKENDS: unknown backend {other:?}"),
        })
        .collect()
}

fn peers(n: u32, base: u32) -> Vec<Peer> {
    (0..n)
        .map(|i| Peer {
            public_key: PrivateKey::generate().public_key(),
            allowed_ips: [format!("{}/32", Ipv4Addr::from(base + i)).parse().unwrap()].into(),
            endpoint: None,
        })
        .collect()
}

impl Bench {
    async fn new(backend: Backend) -> Self {
        let pid = std::process::id();
        let node: NetnsName = format!("dpbench{pid}-node").parse().unwrap();
        let gateway: NetnsName = format!("dpbench{pid}-gw").parse().unwrap();
        netns::create_netns(&node).unwrap();
        let links = Arc::new(NetlinkLinks::new());
        let log_dir = std::env::temp_dir().join(format!("dpbench{pid}"));
        let wireguard = WireGuardExecutor::new(backend, links.clone(), Some(log_dir));
        let dp = wireguard.dataplane(links.clone());
        let host = NetnsRef::Named(node.clone());
        // A veth stands in for the NIC (this kernel has no dummy driver).
        let eth0: InterfaceName = "eth0".parse().unwrap();
        links
            .create_veth(&host, &eth0, &host, &"eth0-peer".parse().unwrap())
            .await
            .unwrap();
        links
            .add_address(
                &host,
                &eth0,
                &AddressSpec::plain("198.51.100.4/24".parse().unwrap()),
            )
            .await
            .unwrap();
        links.set_up(&host, &eth0).await.unwrap();
        Self {
            node,
            gateway,
            links,
            wireguard,
            dp,
        }
    }

    fn desired(&self, key: &PrivateKey, peers: &[Peer]) -> GatewayNodeState {
        let mut state = GatewayNodeState::new(
            NetnsRef::Named(self.node.clone()),
            "eth0".parse().unwrap(),
            "198.51.100.4".parse().unwrap(),
        )
        .unwrap();
        state.gateway_netns = self.gateway.clone();
        state
            .ilb_addresses
            .insert("198.51.100.100".parse().unwrap());
        let mut gw =
            GatewayTunnel::new(6000, key.clone(), "198.51.100.10".parse().unwrap()).unwrap();
        for p in peers {
            gw.upsert_peer(p.clone()).unwrap();
        }
        state.add_gateway(gw).unwrap();
        state
    }

    /// observe + plan + apply; returns the three durations.
    async fn converge(&self, desired: &GatewayNodeState) -> [Duration; 3] {
        let [o, p, setup, peers, routes] = self.converge_split(desired).await;
        [o, p, setup + peers + routes]
    }

    /// observe, plan, then apply in three parts (the plan's order: everything else, then the
    /// peer ops, then the peer routes); returns the five durations.
    async fn converge_split(&self, desired: &GatewayNodeState) -> [Duration; 5] {
        let t0 = Instant::now();
        let observed = self
            .dp
            .observe(&observe_request_for_gateway_node(desired))
            .await
            .unwrap();
        let t1 = Instant::now();
        let ops = plan_gateway_node(desired, &observed);
        let t2 = Instant::now();
        let first_peer = ops
            .iter()
            .position(|o| o.peer_device().is_some())
            .unwrap_or(ops.len());
        let first_route = ops[first_peer..]
            .iter()
            .position(|o| o.peer_device().is_none())
            .map_or(ops.len(), |i| first_peer + i);
        let mut times = [
            t1 - t0,
            t2 - t1,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        ];
        for (slot, part) in [
            (2, &ops[..first_peer]),
            (3, &ops[first_peer..first_route]),
            (4, &ops[first_route..]),
        ] {
            let t = Instant::now();
            let report = self.dp.apply(part).await.unwrap();
            assert!(report.peer_failures.is_empty());
            times[slot] = t.elapsed();
        }
        times
    }

    async fn teardown_gateway(&self) {
        let device = self.device();
        self.wireguard.control().delete(&device).await.unwrap();
        self.links.forget(&device.netns);
        netns::delete_netns(&self.gateway).unwrap();
        // The kernel tears a namespace (and the veth into it) down asynchronously.
        let host = NetnsRef::Named(self.node.clone());
        let veth: InterfaceName = "host-gateway".parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.links.index(&host, &veth).await.unwrap().is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn device(&self) -> WgDeviceId {
        WgDeviceId {
            netns: NetnsRef::Named(self.gateway.clone()),
            name: InterfaceName::for_gateway_port(6000),
        }
    }

    async fn peer_count(&self, desired: &GatewayNodeState) -> usize {
        let observed = self
            .dp
            .observe(&observe_request_for_gateway_node(desired))
            .await
            .unwrap();
        observed.wireguard[&self.device()].peers.len()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: the peer benchmark needs root (network namespaces, WireGuard)");
        return;
    }
    let backends = backends();
    let key = PrivateKey::generate();

    println!("\n## Cold start: whole gateway node with N peers (observe + plan + apply)\n");
    println!(
        "| backend | peers | observe ms | plan ms | apply: node ms | apply: peers ms | apply: routes ms | total ms | per peer µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &backend in &backends {
        let bench = Bench::new(backend).await;
        for n in [1_000u32, 10_000] {
            cold_start(&bench, backend, &key, n).await;
        }
    }

    println!("\n## Marginal cost of one peer (median of {REPEAT})\n");
    println!(
        "| backend | existing peers | add: apply ms | remove: apply ms | add: observe+plan+apply ms | remove: observe+plan+apply ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for &backend in &backends {
        let bench = Bench::new(backend).await;
        for existing in [0u32, 1_000, 10_000] {
            marginal(&bench, backend, &key, existing).await;
        }
    }
}

async fn cold_start(bench: &Bench, backend: Backend, key: &PrivateKey, n: u32) {
    let ps = peers(n, 0x0a40_0000);
    let desired = bench.desired(key, &ps);
    let started = Instant::now();
    let [o, p, setup, peer_ops, routes] = bench.converge_split(&desired).await;
    let total = started.elapsed();
    assert_eq!(bench.peer_count(&desired).await, n as usize);
    println!(
        "| {} | {n} | {} | {} | {} | {} | {} | {} | {:.1} |",
        backend.as_str(),
        ms(o),
        ms(p),
        ms(setup),
        ms(peer_ops),
        ms(routes),
        ms(total),
        total.as_secs_f64() * 1e6 / f64::from(n)
    );
    bench.teardown_gateway().await;
}

async fn marginal(bench: &Bench, backend: Backend, key: &PrivateKey, existing: u32) {
    let ps = peers(existing, 0x0a40_0000);
    let mut desired = bench.desired(key, &ps);
    bench.converge(&desired).await;
    let device = bench.device();
    let gw_ns = NetnsRef::Named(bench.gateway.clone());
    let extra = peers(u32::try_from(REPEAT).unwrap(), 0x0a80_0000);
    let (mut add, mut remove, mut add_cycle, mut remove_cycle) = (vec![], vec![], vec![], vec![]);
    for p in &extra {
        // What the daemon does on one watch event: the two ops for this peer only.
        let route = RouteSpec::on_link(*p.allowed_ips.first().unwrap(), device.name.clone());
        let t = Instant::now();
        bench
            .dp
            .apply(&[
                Op::AddPeer {
                    device: device.clone(),
                    peer: p.clone(),
                },
                Op::AddRoute {
                    netns: gw_ns.clone(),
                    route: route.clone(),
                },
            ])
            .await
            .unwrap();
        add.push(t.elapsed());
        let t = Instant::now();
        bench
            .dp
            .apply(&[
                Op::RemovePeer {
                    device: device.clone(),
                    public_key: p.public_key.clone(),
                },
                Op::DelRoute {
                    netns: gw_ns.clone(),
                    route,
                },
            ])
            .await
            .unwrap();
        remove.push(t.elapsed());
        // A full reconcile for the same change: reads every peer back, so it grows with N.
        desired
            .gateway_mut(6000)
            .unwrap()
            .upsert_peer(p.clone())
            .unwrap();
        let t = Instant::now();
        bench.converge(&desired).await;
        add_cycle.push(t.elapsed());
        desired
            .gateway_mut(6000)
            .unwrap()
            .remove_peer(&p.public_key)
            .unwrap();
        let t = Instant::now();
        bench.converge(&desired).await;
        remove_cycle.push(t.elapsed());
    }
    assert_eq!(bench.peer_count(&desired).await, existing as usize);
    println!(
        "| {} | {existing} | {} | {} | {} | {} |",
        backend.as_str(),
        ms(median(add)),
        ms(median(remove)),
        ms(median(add_cycle)),
        ms(median(remove_cycle))
    );
    bench.teardown_gateway().await;
}
