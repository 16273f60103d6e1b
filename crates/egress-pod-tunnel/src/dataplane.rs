//! [`PodTunnel`] on egress-dataplane: the record of a sandbox becomes a `PodTunnelState`,
//! which is observed, planned and applied in two steps (the tunnel alone, then — after the
//! handshake — the routes), and a `PodTeardown` for DEL and for undoing a failed ADD. The
//! plugin is one short process per call, so it drives the async executors from a
//! current-thread runtime.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

use egress_cni_proto::{DefaultRoute, WireKey};
use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::spec::MAIN_TABLE;
use egress_dataplane::state::{IngressReturnPath, PodIpv6Routing, PodRouting, PodTunnelState};
use egress_dataplane::wireguard::{KernelWireGuard, UserspaceConfig, UserspaceWireGuard};
use egress_dataplane::{
    Dataplane, FwMark, InterfaceName, NetnsRef, Op, PodTeardown, PrivateKey, PublicKey, RouteSpec,
    WgDeviceId, observe_request_for_pod, observe_request_for_pod_teardown, plan_pod,
    plan_pod_teardown,
};

use crate::tunnel::{INGRESS_MARK, POD_TUNNEL_IFNAME, PodTunnel, TunnelError, TunnelSpec};
use egress_cni_proto::Backend;

/// Preference of the ingress rule (the kernel's choice for the original's rule without one).
const INGRESS_RULE_PRIORITY: u32 = 32_765;
/// Keepalive interval while waiting for the first handshake: turning it on sends a
/// keepalive, which starts the handshake. Turned off again once the tunnel is up, as the
/// original runs without keepalives.
const HANDSHAKE_KEEPALIVE_SECONDS: u16 = 1;

fn err(context: &str) -> impl Fn(&dyn std::error::Error) -> TunnelError + '_ {
    move |e| TunnelError(format!("{context}: {}", egress_runtime::error_chain(e)))
}

/// The pod data plane on egress-dataplane's real executors.
#[derive(Debug, Default, Clone, Copy)]
pub struct DataplaneTunnel;

/// The process's current-thread runtime, made on first use. One for the whole process:
/// the netlink connections of the executors are tasks on it and must outlive each call.
static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> =
    std::sync::OnceLock::new();

/// Runs `f` to completion on [`RUNTIME`].
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, TunnelError> {
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("failed to start an async runtime: {e}"))
    });
    match runtime {
        Ok(rt) => Ok(rt.block_on(f)),
        Err(e) => Err(TunnelError(e.clone())),
    }
}

/// [`block_on`] for a fallible future, naming what failed.
fn run<T, E: std::error::Error>(
    context: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, TunnelError> {
    block_on(f)?.map_err(|e| err(context)(&e))
}

impl DataplaneTunnel {
    /// Executors for `backend`, with the sandbox's device named after its container ID.
    /// The userspace backend also removes kernel devices (it deletes the link after
    /// stopping a daemon, if any), so DEL without a record uses it.
    fn dataplane(
        &self,
        backend: Backend,
        state_dir: &Path,
        device: &WgDeviceId,
        id: &str,
    ) -> Dataplane {
        let links = Arc::new(NetlinkLinks::new());
        let wireguard: Arc<dyn egress_dataplane::control::WireGuardControl> = match backend {
            Backend::Kernel => Arc::new(KernelWireGuard::new(links.clone())),
            Backend::Userspace => Arc::new(UserspaceWireGuard::new(
                links.clone(),
                UserspaceConfig {
                    log_dir: log_dir(state_dir),
                    ..UserspaceConfig::default()
                },
            )),
        };
        wireguard.name_device(device, &InterfaceName::for_pod_socket(id));
        Dataplane::system(links, wireguard)
    }

    fn dataplane_for(&self, spec: &TunnelSpec) -> Result<Dataplane, TunnelError> {
        Ok(self.dataplane(
            spec.sandbox.backend,
            &spec.sandbox.state_dir,
            &device(&spec.sandbox.netns)?,
            &spec.sandbox.container_id,
        ))
    }

    /// Observes, plans and applies `desired`.
    fn converge(&self, dp: &Dataplane, desired: &PodTunnelState) -> Result<Vec<Op>, TunnelError> {
        block_on(async {
            let observed = dp
                .observe(&observe_request_for_pod(desired))
                .await
                .map_err(|e| err("failed to read the pod namespace")(&e))?;
            let ops = plan_pod(desired, &observed);
            dp.apply(&ops)
                .await
                .map_err(|e| err("failed to program the pod namespace")(&e))?;
            Ok(ops)
        })?
    }

    fn remove(&self, dp: &Dataplane, teardown: &PodTeardown) -> Result<(), TunnelError> {
        block_on(async {
            let observed = dp
                .observe(&observe_request_for_pod_teardown(teardown))
                .await
                .map_err(|e| err("failed to read the pod namespace")(&e))?;
            let ops = plan_pod_teardown(teardown, &observed);
            dp.apply(&ops)
                .await
                .map_err(|e| err("failed to remove the pod tunnel")(&e))?;
            Ok(())
        })?
    }
}

fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("wireguard-go")
}

/// Removes the sandbox's wireguard-go log (kept while the tunnel lives); missing is fine.
fn remove_log(state_dir: &Path, container_id: &str) -> Result<(), TunnelError> {
    let log = log_dir(state_dir).join(format!(
        "{}.log",
        InterfaceName::for_pod_socket(container_id)
    ));
    match std::fs::remove_file(&log) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TunnelError(format!(
            "failed to remove {}: {e}",
            log.display()
        ))),
        _ => Ok(()),
    }
}

/// After a failed step has removed the tunnel: the daemon's log goes too (a failed ADD leaves
/// nothing of the sandbox in the state directory).
fn forget_log(spec: &TunnelSpec) {
    if let Err(e) = remove_log(&spec.sandbox.state_dir, &spec.sandbox.container_id) {
        tracing::error!(error = %e.0, "failed to remove the wireguard-go log");
    }
}

fn device(netns: &Path) -> Result<WgDeviceId, TunnelError> {
    Ok(WgDeviceId {
        netns: NetnsRef::Path(netns.to_path_buf()),
        name: wg0()?,
    })
}

fn ifname(name: &str) -> Result<InterfaceName, TunnelError> {
    name.parse().map_err(|e| err("invalid interface name")(&e))
}

fn wg0() -> Result<InterfaceName, TunnelError> {
    ifname(POD_TUNNEL_IFNAME)
}

fn ingress() -> Option<IngressReturnPath> {
    FwMark::new(INGRESS_MARK).map(|mark| IngressReturnPath {
        mark,
        table: INGRESS_MARK,
        rule_priority: INGRESS_RULE_PRIORITY,
    })
}

fn v4(cidrs: &[IpNet]) -> BTreeSet<ipnet::Ipv4Net> {
    cidrs
        .iter()
        .filter_map(|c| match c {
            IpNet::V4(n) => Some(n.trunc()),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// The IPv6 half of the pod's routing: only when its gateway carries IPv6 and the pod has an
/// IPv6 address; otherwise IPv6 CIDRs change nothing and IPv6 routes are left alone.
fn ipv6_routing(spec: &TunnelSpec) -> Option<PodIpv6Routing> {
    if !spec.ipv6 || spec.sandbox.pod_ipv6.is_none() {
        return None;
    }
    let cidrs = spec
        .routed_cidrs()
        .iter()
        .filter_map(|c| match c {
            IpNet::V6(n) => Some(n.trunc()),
            IpNet::V4(_) => None,
        })
        .collect();
    Some(PodIpv6Routing {
        eth_gateway: spec.sandbox.eth_ipv6_gateway,
        cidrs,
    })
}

/// The full desired state of a pod's tunnel.
fn desired(spec: &TunnelSpec, key: &PrivateKey) -> Result<PodTunnelState, TunnelError> {
    let eth = ifname(&spec.sandbox.eth)?;
    let gateway_key = PublicKey::from_base64(spec.gateway_public_key.as_str())
        .map_err(|e| err("invalid gateway public key")(&e))?;
    let routing = match spec.default_route {
        DefaultRoute::StaticEgressGateway => PodRouting::StaticEgressGateway {
            exclude: v4(&spec.routed_cidrs()),
        },
        DefaultRoute::AzureNetworking => PodRouting::AzureNetworking {
            through_tunnel: v4(&spec.routed_cidrs()),
        },
    };
    let state = PodTunnelState {
        netns: NetnsRef::Path(spec.sandbox.netns.clone()),
        socket_netns: NetnsRef::Current,
        interface: wg0()?,
        eth,
        eth_gateway: spec.sandbox.eth_gateway,
        private_key: key.clone(),
        // IPv4 leaves through `via inet6 fe80::1`: wg0 needs no address of its own.
        addresses: BTreeSet::new(),
        mtu: spec.sandbox.mtu,
        gateway_peer: PodTunnelState::gateway_peer(gateway_key, spec.endpoint),
        routing,
        ipv6: ipv6_routing(spec),
        ingress: ingress(),
        loose_rp_filter: true,
    };
    state
        .validate()
        .map_err(|e| err("invalid pod tunnel")(&e))?;
    Ok(state)
}

/// The tunnel alone: device, peer, MTU, up; the pod's routing untouched.
fn tunnel_only(state: &PodTunnelState) -> PodTunnelState {
    PodTunnelState {
        routing: PodRouting::AzureNetworking {
            through_tunnel: BTreeSet::new(),
        },
        ipv6: None,
        ingress: None,
        loose_rp_filter: false,
        ..state.clone()
    }
}

fn teardown_of(
    spec: Option<&TunnelSpec>,
    netns: &Path,
    container_id: &str,
) -> Result<PodTeardown, TunnelError> {
    let eth = ifname(spec.map_or("eth0", |s| s.sandbox.eth.as_str()))?;
    let mut eth_routes = BTreeSet::new();
    if let Some(spec) = spec
        && spec.default_route == DefaultRoute::StaticEgressGateway
    {
        // Only the exclusions: the on-link route to the gateway may be the main plugin's
        // own (ours replaced it), and removing it would cut the pod off its gateway.
        for cidr in v4(&spec.routed_cidrs()) {
            eth_routes.insert(RouteSpec::via(
                IpNet::V4(cidr),
                spec.sandbox.eth_gateway.into(),
                eth.clone(),
            ));
        }
        if let Some(v6) = ipv6_routing(spec)
            && let Some(gw) = v6.eth_gateway
        {
            for cidr in v6.cidrs {
                eth_routes.insert(RouteSpec::via(IpNet::V6(cidr), gw.into(), eth.clone()));
            }
        }
    }
    Ok(PodTeardown {
        netns: NetnsRef::Path(netns.to_path_buf()),
        interface: wg0()?,
        eth,
        socket_netns: NetnsRef::Current,
        socket_name: Some(InterfaceName::for_pod_socket(container_id)),
        ingress: ingress(),
        eth_routes,
        restore_routes: BTreeSet::new(),
    })
}

impl PodTunnel for DataplaneTunnel {
    type Key = PrivateKey;

    fn generate_key(&self) -> Result<(PrivateKey, WireKey), TunnelError> {
        let key = PrivateKey::generate();
        let public = WireKey::parse(&key.public_key().to_base64()).map_err(TunnelError)?;
        Ok((key, public))
    }

    fn setup(&self, spec: &TunnelSpec, key: &PrivateKey) -> Result<(), TunnelError> {
        let state = desired(spec, key)?;
        let dp = self.dataplane_for(spec)?;
        let device = device(&spec.sandbox.netns)?;
        let built = self.converge(&dp, &tunnel_only(&state)).and_then(|_| {
            run(
                "failed to start the handshake",
                dp.wireguard.set_peer_keepalive(
                    &device,
                    &state.gateway_peer,
                    HANDSHAKE_KEEPALIVE_SECONDS,
                    false,
                ),
            )
        });
        if built.is_err() {
            if let Err(e) = self.remove(
                &dp,
                &teardown_of(Some(spec), &spec.sandbox.netns, &spec.sandbox.container_id)?,
            ) {
                tracing::error!(error = %e.0, "failed to remove the partial tunnel");
            }
            forget_log(spec);
        }
        built
    }

    fn latest_handshake(&self, spec: &TunnelSpec) -> Result<Option<SystemTime>, TunnelError> {
        let dp = self.dataplane_for(spec)?;
        let observed = run(
            "failed to read wg0",
            dp.wireguard.observe(&device(&spec.sandbox.netns)?),
        )?
        .ok_or_else(|| {
            TunnelError(format!(
                "wg0 disappeared from {}",
                spec.sandbox.netns.display()
            ))
        })?;
        let gateway = PublicKey::from_base64(spec.gateway_public_key.as_str())
            .map_err(|e| err("invalid gateway public key")(&e))?;
        Ok(observed
            .peers
            .get(&gateway)
            .and_then(|p| p.last_handshake)
            .filter(|t| *t > SystemTime::UNIX_EPOCH))
    }

    fn retry_handshake(&self, spec: &TunnelSpec) -> Result<(), TunnelError> {
        let gateway = PublicKey::from_base64(spec.gateway_public_key.as_str())
            .map_err(|e| err("invalid gateway public key")(&e))?;
        let peer = PodTunnelState::gateway_peer(gateway, spec.endpoint);
        let dp = self.dataplane_for(spec)?;
        run(
            "failed to restart the handshake",
            dp.wireguard.set_peer_keepalive(
                &device(&spec.sandbox.netns)?,
                &peer,
                HANDSHAKE_KEEPALIVE_SECONDS,
                true,
            ),
        )
    }

    fn route(&self, spec: &TunnelSpec, key: &PrivateKey) -> Result<(), TunnelError> {
        let state = desired(spec, key)?;
        let dp = self.dataplane_for(spec)?;
        run(
            "failed to turn the handshake keepalive off",
            dp.wireguard.set_peer_keepalive(
                &device(&spec.sandbox.netns)?,
                &state.gateway_peer,
                0,
                false,
            ),
        )?;
        // What the main plugin routed via eth0 (either family), to put back if this step
        // fails half-way.
        let before: BTreeSet<RouteSpec> = run(
            "failed to read the pod namespace",
            dp.observe(&observe_request_for_pod(&state)),
        )?
        .netns(&state.netns)
        .map(|ns| {
            ns.routes
                .iter()
                .chain(&ns.ipv6_routes)
                .filter(|r| r.table == MAIN_TABLE && r.device == state.eth)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
        if let Err(e) = self.converge(&dp, &state) {
            // Everything goes, and the main plugin's routes come back.
            let mut undo =
                teardown_of(Some(spec), &spec.sandbox.netns, &spec.sandbox.container_id)?;
            // The on-link gateway routes go too, unless they are among the restored ones.
            undo.eth_routes.insert(RouteSpec::on_link(
                IpNet::V4(spec.sandbox.eth_gateway.into()),
                state.eth.clone(),
            ));
            if let Some(gw) = state.ipv6.as_ref().and_then(|v6| v6.eth_gateway) {
                undo.eth_routes
                    .insert(RouteSpec::on_link(IpNet::V6(gw.into()), state.eth.clone()));
            }
            undo.restore_routes = before;
            if let Err(undo_err) = self.remove(&dp, &undo) {
                tracing::error!(error = %undo_err.0, "failed to restore the pod's routes");
            }
            forget_log(spec);
            return Err(e);
        }
        Ok(())
    }

    fn teardown(
        &self,
        spec: Option<&TunnelSpec>,
        netns: &Path,
        container_id: &str,
        state_dir: &Path,
    ) -> Result<(), TunnelError> {
        let state_dir = spec.map_or(state_dir, |s| s.sandbox.state_dir.as_path());
        // Without a record the backend is unknown: the userspace one removes both kinds.
        let backend = spec.map_or(Backend::Userspace, |s| s.sandbox.backend);
        let dp = self.dataplane(backend, state_dir, &device(netns)?, container_id);
        self.remove(&dp, &teardown_of(spec, netns, container_id)?)?;
        remove_log(state_dir, container_id)
    }

    fn detach(&self, spec: &TunnelSpec) -> Result<(), TunnelError> {
        let dp = self.dataplane_for(spec)?;
        let mut undo = teardown_of(Some(spec), &spec.sandbox.netns, &spec.sandbox.container_id)?;
        // The main plugin's default route, which the tunnel's replaced (staticEgressGateway)
        // or left alone (azureNetworking: then it is present and nothing is added).
        undo.restore_routes.insert(RouteSpec::via(
            IpNet::V4(ipnet::Ipv4Net::default()),
            spec.sandbox.eth_gateway.into(),
            ifname(&spec.sandbox.eth)?,
        ));
        // Likewise IPv6's, when the tunnel carried it and the main plugin named a gateway
        // (without one, the pod has no IPv6 default route until it restarts).
        if let Some(gw) = ipv6_routing(spec).and_then(|v6| v6.eth_gateway) {
            undo.restore_routes.insert(RouteSpec::via(
                IpNet::V6(ipnet::Ipv6Net::default()),
                gw.into(),
                ifname(&spec.sandbox.eth)?,
            ));
        }
        self.remove(&dp, &undo)?;
        remove_log(&spec.sandbox.state_dir, &spec.sandbox.container_id)
    }

    fn drift(&self, spec: &TunnelSpec) -> Result<Vec<String>, TunnelError> {
        // The private key is not recorded: plan with a stand-in and compare the device's
        // public key with the recorded one instead.
        let state = desired(spec, &PrivateKey::generate())?;
        let dp = self.dataplane_for(spec)?;
        let observed = run(
            "failed to read the pod namespace",
            dp.observe(&observe_request_for_pod(&state)),
        )?;
        let mut drift = Vec::new();
        if observed.netns(&state.netns).is_none() {
            return Ok(vec![format!(
                "network namespace {} is gone",
                spec.sandbox.netns.display()
            )]);
        }
        if let Some(wg) = observed.wireguard.get(&device(&spec.sandbox.netns)?) {
            let recorded = PublicKey::from_base64(spec.pod_public_key.as_str()).ok();
            if wg.public_key != recorded {
                drift.push(format!(
                    "wg0 has public key {} instead of the registered {}",
                    wg.public_key
                        .as_ref()
                        .map_or("none".into(), |k| k.to_base64()),
                    spec.pod_public_key
                ));
            }
        }
        for op in plan_pod(&state, &observed) {
            let line = match &op {
                Op::ConfigureWireGuard { .. } => continue,
                Op::CreateWireGuard { .. } => "wg0 is missing".to_owned(),
                Op::DeleteWireGuard { .. } => "wg0 is not our WireGuard device".to_owned(),
                Op::AddPeer { peer, .. } => format!("gateway peer differs, want {peer}"),
                Op::RemovePeer { public_key, .. } => format!("unexpected peer {public_key}"),
                Op::AddRoute { route, .. } => format!("route {route} is missing"),
                Op::DelRoute { route, .. } => format!("unexpected route {route}"),
                Op::AddRule { rule, .. } => format!("rule {rule} is missing"),
                Op::ReplaceNftTable { table, .. } => format!("{table} is missing or differs"),
                Op::SetMtu { mtu, .. } => format!("wg0 MTU is not {mtu}"),
                Op::SetLinkUp { .. } => "wg0 is down".to_owned(),
                Op::SetSysctl { key, value, .. } => format!("sysctl {key} is not {value}"),
                other => other.to_string(),
            };
            drift.push(line);
        }
        Ok(drift)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::sandbox::{SandboxRecord, test_record};

    fn spec(ipv6: bool, pod_ipv6: Option<&str>, gateway: Option<&str>) -> TunnelSpec {
        TunnelSpec {
            sandbox: SandboxRecord {
                pod_ipv6: pod_ipv6.map(|a| a.parse().unwrap()),
                eth_ipv6_gateway: gateway.map(|a| a.parse().unwrap()),
                node_excluded_cidrs: vec![
                    "169.254.169.254/32".parse().unwrap(),
                    "fd00:10:96::/112".parse().unwrap(),
                ],
                ..test_record(Path::new(crate::DEFAULT_STATE_DIR), "c1")
            },
            gateway: "gw".into(),
            endpoint: "10.0.0.5:6000".parse().unwrap(),
            gateway_public_key: WireKey::parse(&PrivateKey::generate().public_key().to_base64())
                .unwrap(),
            pod_public_key: WireKey::parse(&PrivateKey::generate().public_key().to_base64())
                .unwrap(),
            default_route: DefaultRoute::StaticEgressGateway,
            exclude_cidrs: vec![
                "192.0.2.0/24".parse().unwrap(),
                "2001:db8:e::/48".parse().unwrap(),
            ],
            ipv6,
        }
    }

    #[test]
    fn the_ipv6_layout_needs_the_managers_word_and_a_pod_address() {
        let key = PrivateKey::generate();
        let v6 = |s: &TunnelSpec| desired(s, &key).unwrap().ipv6;
        assert_eq!(v6(&spec(false, Some("fd00::5"), Some("fd00::1"))), None);
        assert_eq!(v6(&spec(true, None, None)), None);
        let on = v6(&spec(true, Some("fd00::5"), Some("fd00::1"))).unwrap();
        assert_eq!(on.eth_gateway, Some("fd00::1".parse().unwrap()));
        // The SGC's and the node's IPv6 exclusions; the IPv4 ones stay in the IPv4 half.
        let cidrs: Vec<String> = on.cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(cidrs, ["2001:db8:e::/48", "fd00:10:96::/112"]);
        let state = desired(&spec(true, Some("fd00::5"), Some("fd00::1")), &key).unwrap();
        let PodRouting::StaticEgressGateway { exclude } = &state.routing else {
            panic!("{:?}", state.routing)
        };
        assert_eq!(exclude.len(), 2);
        // Excluding IPv6 without knowing eth0's IPv6 gateway is refused, not guessed.
        let err = desired(&spec(true, Some("fd00::5"), None), &key).unwrap_err();
        assert!(err.0.contains("need an IPv6 gateway on eth0"), "{}", err.0);
        // The undo of a DEL removes the IPv6 exclusions too.
        let t = teardown_of(
            Some(&spec(true, Some("fd00::5"), Some("fd00::1"))),
            Path::new("/run/netns/p1"),
            "c1",
        )
        .unwrap();
        assert!(
            t.eth_routes
                .iter()
                .any(|r| r.to_string() == "2001:db8:e::/48 via fd00::1 dev eth0"),
            "{:?}",
            t.eth_routes
        );
    }
}
