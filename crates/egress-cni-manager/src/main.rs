//! `egress-cni-manager`: flags, logging, start, graceful shutdown on SIGTERM / ctrl-c.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use egress_cni_manager::conflist::WireguardBackend;
use egress_cni_manager::{FailoverOptions, ManagerConfig};
use egress_runtime::{LogFormat, LogWriter, init_tracing, try_shutdown_signal};

/// `--wireguard-backend` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    Kernel,
    Userspace,
}

/// Node-local CNI manager of kube-egress-gateway.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// This node's name (use the downward API: spec.nodeName).
    #[arg(long, env = "MY_NODE_NAME")]
    node_name: String,
    /// Unix socket the plugin talks to.
    #[arg(long, env = "CNI_SOCKET_PATH", default_value = egress_cni_proto::DEFAULT_SOCKET_PATH)]
    socket_path: PathBuf,
    /// CNI configuration directory.
    #[arg(long, env = "CNI_CONF_DIR", default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// Node exception CIDRs that always bypass the tunnel (comma-separated).
    #[arg(
        long,
        env = "EXCEPTION_CIDRS",
        value_delimiter = ',',
        default_value = "169.254.169.254/32,169.254.10.11/32"
    )]
    exception_cidrs: Vec<ipnet::IpNet>,
    /// How long the plugin waits for the first WireGuard handshake at ADD, in seconds.
    #[arg(long, env = "HANDSHAKE_TIMEOUT_SECONDS", default_value_t = 10)]
    handshake_timeout_seconds: u64,
    /// How often the CNI config directory is re-checked, in milliseconds.
    #[arg(long, env = "CONFLIST_POLL_MS", default_value_t = 2000)]
    conflist_poll_ms: u64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Remove the chained conflist on exit (set when uninstalling, not on upgrades).
    #[arg(long, env = "UNINSTALL_ON_EXIT", default_value_t = false)]
    uninstall_on_exit: bool,
    /// WireGuard implementation the plugin uses for pod tunnels (written into the conflist).
    #[arg(long, env = "WIREGUARD_BACKEND", value_enum, default_value = "kernel")]
    wireguard_backend: BackendArg,
    /// With the userspace backend, raise the node's fs.inotify.max_user_instances to at least
    /// this at start (one instance per annotated pod's wireguard-go; the kernel default 128
    /// caps a node near 100 annotated pods). 0 leaves it alone; never lowered.
    #[arg(long, env = "INOTIFY_INSTANCES_MIN", default_value_t = egress_cni_manager::inotify::DEFAULT_MIN_INSTANCES)]
    inotify_instances_min: u64,
    /// Most plugin connections open at once (lowered to fit the open-file limit); more are
    /// answered "busy" and the plugin retries.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = egress_cni_manager::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,
    /// Re-handshake this node's pod tunnels of a gateway when its healthy nodes change
    /// (false: WireGuard's own 15 s decides after a gateway failure).
    #[arg(long, env = "FAILOVER", default_value_t = true, action = clap::ArgAction::Set)]
    failover: bool,
    /// Attach, move and detach the tunnels of running pods when their gateway annotation or
    /// gateway changes (false: a running pod keeps the tunnel its CNI ADD built).
    #[arg(long, env = "ATTACH_RUNNING_PODS", default_value_t = true, action = clap::ArgAction::Set)]
    attach_running_pods: bool,
    /// Port of the gateways' load-balancer health probe (`/gw/<SGC UID>`).
    #[arg(long, env = "GATEWAY_PROBE_PORT", default_value_t = egress_api::constants::HEALTH_PROBE_PORT)]
    gateway_probe_port: u16,
    /// Milliseconds between two probes of each gateway node of the SGCs this node's pods use.
    #[arg(long, env = "GATEWAY_PROBE_INTERVAL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    gateway_probe_interval_ms: u64,
    /// Milliseconds a gateway has to answer a probe before it counts as down.
    #[arg(long, env = "GATEWAY_PROBE_TIMEOUT_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    gateway_probe_timeout_ms: u64,
    /// Milliseconds the load balancer is given to move a draining gateway node's flows after
    /// its prober got the node's 503, before this node's tunnels re-handshake (earlier, they
    /// would handshake with the draining node again).
    #[arg(long, env = "GATEWAY_LB_GRACE_MS", default_value_t = 150, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    gateway_lb_grace_ms: u64,
    /// Port of the gateway daemons' sessions query (their health port): when a gateway node
    /// is lost, only the tunnels whose session was on it are re-handshaken; 0: all of them.
    #[arg(long, env = "GATEWAY_SESSIONS_PORT", default_value_t = egress_api::sessions::DEFAULT_PORT)]
    gateway_sessions_port: u16,
    /// Seconds a gateway's tunnels are watched after its healthy nodes changed (longer than
    /// the load balancer takes to notice the same change: its probe interval plus timeout).
    #[arg(long, env = "FAILOVER_SETTLE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    failover_settle_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing(LogFormat::Text, LogWriter::Stdout);
    let args = Args::parse();
    let client = kube::Client::try_default()
        .await
        .context("failed to create Kubernetes client")?;
    let config = ManagerConfig {
        node_name: args.node_name,
        socket_path: args.socket_path,
        cni_conf_dir: args.cni_conf_dir,
        exception_cidrs: args.exception_cidrs,
        handshake_timeout: Duration::from_secs(args.handshake_timeout_seconds),
        conflist_poll_interval: Duration::from_millis(args.conflist_poll_ms.max(100)),
        http_addr: Some(args.http_addr),
        uninstall_on_exit: args.uninstall_on_exit,
        allowed_uids: vec![0],
        max_connections: usize::from(args.max_connections),
        attach_running_pods: args.attach_running_pods,
    };
    let backend = match args.wireguard_backend {
        BackendArg::Kernel => WireguardBackend::Kernel,
        BackendArg::Userspace => WireguardBackend::Userspace,
    };
    if matches!(backend, WireguardBackend::Userspace) && args.inotify_instances_min > 0 {
        ensure_inotify_instances(args.inotify_instances_min);
    }
    let failover = args.failover.then(|| {
        let mut options = FailoverOptions::default();
        options.settings.probe.port = args.gateway_probe_port;
        options.settings.probe.interval = Duration::from_millis(args.gateway_probe_interval_ms);
        options.settings.probe.timeout = Duration::from_millis(args.gateway_probe_timeout_ms);
        options.settings.probe.lb_grace = Duration::from_millis(args.gateway_lb_grace_ms);
        options.settings.timing.settle = Duration::from_secs(args.failover_settle_seconds);
        options.settings.sessions_port =
            (args.gateway_sessions_port != 0).then_some(args.gateway_sessions_port);
        options
    });
    let reap = args.attach_running_pods && backend == WireguardBackend::Userspace;
    let manager =
        egress_cni_manager::start_with_failover(config, backend, failover, client).await?;
    if reap {
        // Only the binary: it owns the process, and embedding tests wait on their own children.
        tokio::spawn(egress_cni_manager::running::reap_children(
            manager.cancelled(),
        ));
    }
    try_shutdown_signal()
        .context("failed to install SIGTERM handler")?
        .await;
    tracing::info!("shutting down");
    manager.shutdown().await;
    Ok(())
}

/// Raises the inotify instance limit for the userspace backend; a failure is logged, not
/// fatal: the manager still serves, and pods past the limit fail their ADD with a message
/// naming the sysctl.
fn ensure_inotify_instances(floor: u64) {
    use egress_cni_manager::inotify::{self, Outcome};
    match inotify::ensure(std::path::Path::new(inotify::MAX_USER_INSTANCES), floor) {
        Ok(Outcome::Enough(limit)) => {
            tracing::info!(limit, floor, "fs.inotify.max_user_instances is enough")
        }
        Ok(Outcome::Raised { from, to }) => tracing::info!(
            from,
            to,
            "raised fs.inotify.max_user_instances (one per pod tunnel with wireguard-go)"
        ),
        Err(e) => tracing::warn!(error = %e, "pods past the inotify limit will fail their ADD"),
    }
}
