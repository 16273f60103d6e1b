//! Command-line flags of `egress-gateway-daemon` (each with an environment fallback; the
//! original's `MY_NODE_NAME` / `MY_POD_NAMESPACE`) and turning them into a kube client, the
//! data plane executors, a [`DaemonConfig`] and bound [`Listeners`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::state::{DEFAULT_TUNNEL_MTU, GATEWAY_NETNS};
use egress_dataplane::wireguard::{KernelWireGuard, UserspaceConfig, UserspaceWireGuard};
use egress_dataplane::{Dataplane, InterfaceName, NetnsName, NetnsRef};

use crate::desired::HostConfig;
use crate::node::NodeIdentity;
use crate::run::{DaemonConfig, DaemonOptions, Listeners};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A flag value is unusable.
    #[error("failed to use --{flag} {value:?}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// IMDS could not be read.
    #[error("failed to read this node's metadata from IMDS")]
    Imds(#[from] egress_imds::ImdsError),
    /// The Kubernetes client or a listener could not be set up.
    #[error(transparent)]
    Startup(#[from] egress_runtime::StartupError),
}

/// WireGuard implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The kernel module (production).
    Kernel,
    /// wireguard-go daemons owned by this process.
    Userspace,
}

/// Programs this gateway node for every StaticGatewayConfiguration that uses it.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct Args {
    /// Kubernetes node name; also the GatewayStatus name.
    #[arg(long, env = "MY_NODE_NAME")]
    pub node_name: String,
    /// The daemon's namespace (GatewayStatus objects live here).
    #[arg(
        long,
        env = "MY_POD_NAMESPACE",
        default_value = "kube-egress-gateway-system"
    )]
    pub namespace: String,
    /// Namespace of the gateway key Secrets (default: --namespace).
    #[arg(long, env = "SECRET_NAMESPACE")]
    pub secret_namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Base URL of the Azure Instance Metadata Service.
    #[arg(long, env = "IMDS_URL", default_value = egress_imds::DEFAULT_IMDS_URL)]
    pub imds_url: String,
    /// Address of /metrics (also serves /healthz and /readyz).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz (also serves /metrics).
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
    /// Port of the load balancer's health probe (`/gw/<SGC UID>`) served by the daemon
    /// itself; 0: not on the host's addresses (the `lb-probe` keeper serves it from
    /// --lb-probe-state-file, as the chart runs it), only on an ephemeral loopback port.
    #[arg(long, env = "GATEWAY_LB_PROBE_PORT", default_value_t = egress_api::constants::HEALTH_PROBE_PORT)]
    pub gateway_lb_probe_port: u16,
    /// File the probe state is kept in for the `lb-probe` keeper (empty: none).
    #[arg(long, env = "LB_PROBE_STATE_FILE", default_value = crate::probe_file::DEFAULT_STATE_FILE)]
    pub lb_probe_state_file: PathBuf,
    /// Seconds probes answer 503 after a SIGTERM on a node taken out of service (cordoned,
    /// deleted, shutting down, annotated) before the daemon exits; a restart on a node in
    /// service exits at once and keeps the probe healthy.
    #[arg(long, env = "LB_PROBE_DRAIN_DELAY_SECONDS", default_value_t = 10)]
    pub lb_probe_drain_delay_seconds: u64,
    /// The host's primary interface (ILB addresses, secondary-IP cleanup).
    #[arg(long, env = "HOST_INTERFACE", default_value = "eth0")]
    pub host_interface: String,
    /// Use this named network namespace as the host (simulator and tests); default: our own.
    #[arg(long, env = "HOST_NETNS")]
    pub host_netns: Option<String>,
    /// Name of the gateway network namespace.
    #[arg(long, env = "GATEWAY_NETNS", default_value = GATEWAY_NETNS)]
    pub gateway_netns: String,
    /// MTU of the gateway tunnel interfaces.
    #[arg(long, env = "TUNNEL_MTU", default_value_t = DEFAULT_TUNNEL_MTU)]
    pub tunnel_mtu: u32,
    /// WireGuard implementation.
    #[arg(long, env = "WIREGUARD_BACKEND", value_enum, default_value = "kernel")]
    pub wireguard_backend: Backend,
    /// wireguard-go binary (userspace backend).
    #[arg(long, env = "WIREGUARD_GO", default_value = "wireguard-go")]
    pub wireguard_go: PathBuf,
    /// Directory of the wireguard-go logs (userspace backend).
    #[arg(
        long,
        env = "WIREGUARD_LOG_DIR",
        default_value = "/run/egress-dataplane/wireguard"
    )]
    pub wireguard_log_dir: PathBuf,
    /// Seconds between full observe/plan/apply passes that repair drift.
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = 60)]
    pub resync_seconds: u64,
    /// Least milliseconds between two GatewayStatus writes.
    #[arg(long, env = "STATUS_INTERVAL_MS", default_value_t = 2000)]
    pub status_interval_ms: u64,
    /// Most peer entries written to the GatewayStatus.
    #[arg(long, env = "STATUS_MAX_PEERS", default_value_t = 1000)]
    pub status_max_peers: usize,
    /// Seconds between WireGuard counter samples for the metrics.
    #[arg(long, env = "METRICS_INTERVAL_SECONDS", default_value_t = 15)]
    pub metrics_interval_seconds: u64,
    /// Longest seconds between two GatewayStatus writes: the heartbeat `egressctl` uses to tell
    /// a stopped daemon, also carrying handshake times that moved on.
    #[arg(long, env = "STATUS_HEARTBEAT_SECONDS", default_value_t = 60)]
    pub status_heartbeat_seconds: u64,
    /// Most bytes of a GatewayStatus spec; the per-gateway peer lists are cut to fit.
    #[arg(long, env = "STATUS_MAX_BYTES", default_value_t = 1_000_000)]
    pub status_max_bytes: usize,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

fn flag_error(flag: &'static str, value: &str, reason: impl ToString) -> StartError {
    StartError::Flag {
        flag,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// A listener that a second instance may bind too (`SO_REUSEPORT`): during a rolling
/// update with a surge pod the old and the new daemon (and keeper) overlap, so the port is
/// never closed.
pub fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    let listen = || {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    };
    listen().map_err(|source| egress_runtime::StartupError::Listen { addr, source }.into())
}

/// Flags of `egress-gateway-daemon lb-probe`, the keeper answering the load balancer's
/// probe from the daemon's probe state file.
#[derive(Debug, clap::Parser)]
#[command(name = "egress-gateway-daemon lb-probe")]
pub struct LbProbeArgs {
    /// Port of the load balancer's health probe (`/gw/<SGC UID>`).
    #[arg(long, env = "GATEWAY_LB_PROBE_PORT", default_value_t = egress_api::constants::HEALTH_PROBE_PORT)]
    pub port: u16,
    /// The daemon's probe state file.
    #[arg(long, env = "LB_PROBE_STATE_FILE", default_value = crate::probe_file::DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
    /// Seconds without a heartbeat from the daemon after which every probe answers 503.
    #[arg(long, env = "LB_PROBE_STALE_AFTER_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub stale_after_seconds: u64,
    /// Source addresses of the load balancer's own prober (comma-separated). What they are
    /// answered is remembered and told to the CNI managers probing the same path, so that
    /// they re-handshake a draining node's pods when the load balancer moves them, not
    /// before. Azure's probes come from 168.63.129.16.
    #[arg(
        long,
        env = "LB_PROBER_IPS",
        value_delimiter = ',',
        default_value = "168.63.129.16"
    )]
    pub lb_prober_ips: Vec<std::net::IpAddr>,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// Everything [`prepare`] builds.
pub type Prepared = (
    kube::Client,
    Dataplane,
    DaemonConfig,
    Listeners,
    DaemonOptions,
);

/// Builds everything the daemon needs from the flags.
pub async fn prepare(args: &Args) -> Result<Prepared, StartError> {
    let host_interface: InterfaceName = args
        .host_interface
        .parse()
        .map_err(|e| flag_error("host-interface", &args.host_interface, e))?;
    let gateway_netns: NetnsName = args
        .gateway_netns
        .parse()
        .map_err(|e| flag_error("gateway-netns", &args.gateway_netns, e))?;
    let host_netns = match &args.host_netns {
        None => NetnsRef::Current,
        Some(name) => NetnsRef::Named(
            name.parse()
                .map_err(|e| flag_error("host-netns", name, e))?,
        ),
    };
    if !(1280..=65_000).contains(&args.tunnel_mtu) {
        return Err(flag_error(
            "tunnel-mtu",
            &args.tunnel_mtu.to_string(),
            "must be 1280-65000",
        ));
    }
    let node = NodeIdentity::from_imds(&args.imds_url).await?;
    tracing::info!(computer_name = %node.computer_name, nic_name = ?node.nic_name, "node identity from IMDS");

    let client = egress_runtime::kube_client(args.kubeconfig.as_deref()).await?;

    let links = Arc::new(NetlinkLinks::new());
    let dataplane = match args.wireguard_backend {
        Backend::Kernel => Dataplane::system(links.clone(), Arc::new(KernelWireGuard::new(links))),
        Backend::Userspace => Dataplane::system(
            links.clone(),
            Arc::new(UserspaceWireGuard::new(
                links,
                UserspaceConfig {
                    program: args.wireguard_go.clone(),
                    log_dir: args.wireguard_log_dir.clone(),
                    ..UserspaceConfig::default()
                },
            )),
        ),
    };
    let config = DaemonConfig {
        node_name: args.node_name.clone(),
        namespace: args.namespace.clone(),
        node,
        host: HostConfig {
            host_netns,
            host_interface,
            gateway_netns,
            tunnel_mtu: args.tunnel_mtu,
            secret_namespace: args
                .secret_namespace
                .clone()
                .unwrap_or_else(|| args.namespace.clone()),
            // /proc/sys/net shows the network namespace of the reader: the host's here.
            ipv6: std::path::Path::new("/proc/sys/net/ipv6").exists(),
        },
        resync_interval: Duration::from_secs(args.resync_seconds.max(1)),
        drain: Duration::from_secs(args.lb_probe_drain_delay_seconds),
        status_interval: Duration::from_millis(args.status_interval_ms),
        status_max_peers: args.status_max_peers,
        metrics_interval: Duration::from_secs(args.metrics_interval_seconds.max(1)),
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
        publish: crate::status_write::PublishConfig {
            heartbeat: Duration::from_secs(args.status_heartbeat_seconds.max(1)),
            max_bytes: args.status_max_bytes,
            imds_url: Some(args.imds_url.clone()),
        },
    };
    let probe_addr = match args.gateway_lb_probe_port {
        0 => SocketAddr::from(([127, 0, 0, 1], 0)),
        port => SocketAddr::from(([0, 0, 0, 0], port)),
    };
    let mut health = vec![listen(args.metrics_addr)?];
    if args.health_addr != args.metrics_addr {
        health.push(listen(args.health_addr)?);
    }
    let listeners = Listeners {
        probe: listen(probe_addr)?,
        health,
    };
    let options = DaemonOptions {
        probe_state_file: (!args.lb_probe_state_file.as_os_str().is_empty())
            .then(|| args.lb_probe_state_file.clone()),
        ..DaemonOptions::default()
    };
    Ok((client, dataplane, config, listeners, options))
}
