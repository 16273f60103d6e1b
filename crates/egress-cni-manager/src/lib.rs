//! egress-cni-manager: the node-local companion of the `kube-egress-cni` plugin. It installs
//! the chained CNI conflist, serves the plugin over a root-only unix socket, creates and
//! deletes PodEndpoints for this node's annotated pods, attaches, moves and detaches the
//! tunnels of running pods whose annotation or gateway changes (`running`), removes the
//! cni-not-ready taint, and re-handshakes its pods' tunnels when the health of their gateways
//! changes (`failover`).
//! Everything it watches is scoped to its own node, except the GatewayVMConfigurations that
//! say where each gateway's nodes are.

pub mod conflist;
pub mod conflist_install;
pub mod connections;
pub mod exchange;
pub mod failover;
pub mod gateway;
pub mod gateways;
pub mod handler;
pub mod http;
pub mod inotify;
pub mod metrics;
pub mod pod_watch;
pub mod report;
pub mod running;
pub mod socket;
pub mod state;
pub mod taint;
pub mod throttle;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::conflist::{PluginEntry, WireguardBackend};
use crate::conflist_install::ConflistInstaller;
pub use crate::failover::{FailoverOptions, FailoverSettings};
use crate::handler::RequestHandler;
use crate::metrics::Metrics;
use crate::state::{NodeState, PodCache};

pub use egress_runtime::error_chain;

/// Settings of one manager.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// This node's name (`spec.nodeName` of the pods it serves).
    pub node_name: String,
    /// Unix socket for the plugin.
    pub socket_path: PathBuf,
    /// CNI config directory (`/etc/cni/net.d`).
    pub cni_conf_dir: PathBuf,
    /// Node exception CIDRs written into the conflist.
    pub exception_cidrs: Vec<ipnet::IpNet>,
    /// ADD handshake timeout written into the conflist.
    pub handshake_timeout: Duration,
    /// How often the CNI config directory is checked.
    pub conflist_poll_interval: Duration,
    /// Health and metrics listener; `None` disables it.
    pub http_addr: Option<SocketAddr>,
    /// Remove our conflist on shutdown (uninstall); otherwise it stays for the next manager.
    pub uninstall_on_exit: bool,
    /// Peer UIDs allowed on the socket (root only in production).
    pub allowed_uids: Vec<u32>,
    /// Most plugin connections open at once (lowered to fit the open-file limit); more are
    /// answered `busy`.
    pub max_connections: usize,
    /// Attach, move and detach the tunnels of running pods whose annotation or gateway
    /// changes (`running`); needs NET_ADMIN and SYS_ADMIN and the pods' namespaces.
    pub attach_running_pods: bool,
}

/// Default of [`ManagerConfig::max_connections`]: far above what a node's container runtime
/// runs in parallel (a connection lasts one request), far below any sane open-file limit.
pub const DEFAULT_MAX_CONNECTIONS: u16 = 64;

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plugin socket could not be set up.
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    /// The HTTP listener could not be bound.
    #[error("failed to bind health/metrics listener {0}")]
    Http(SocketAddr, #[source] std::io::Error),
}

/// A running manager.
#[derive(Debug)]
pub struct RunningManager {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    installer: ConflistInstaller,
    uninstall_on_exit: bool,
    /// Readiness flags.
    pub state: NodeState,
    /// The node pod cache.
    pub cache: PodCache,
    /// Metrics.
    pub metrics: Metrics,
    /// Bound health/metrics address.
    pub http_addr: Option<SocketAddr>,
}

/// Starts all tasks of the manager; the conflist asks for kernel WireGuard.
pub async fn start(
    config: ManagerConfig,
    client: kube::Client,
) -> Result<RunningManager, StartError> {
    start_with_backend(config, WireguardBackend::Kernel, client).await
}

/// As [`start`], writing `backend` as the plugin's `wireguardBackend` (userspace for nodes
/// without the WireGuard kernel module).
pub async fn start_with_backend(
    config: ManagerConfig,
    backend: WireguardBackend,
    client: kube::Client,
) -> Result<RunningManager, StartError> {
    start_with_failover(config, backend, Some(FailoverOptions::default()), client).await
}

/// Where the plugin writes its tunnel records: `pods/` beside the socket (root-only, as the
/// socket's directory), written into the conflist as `stateDir`.
pub fn records_dir(socket_path: &std::path::Path) -> PathBuf {
    socket_path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("/"))
        .join("pods")
}

/// As [`start_with_backend`], with gateway failover as given (`None`: off, tunnels then wait
/// for WireGuard's own 15 s re-handshake when their gateway goes).
pub async fn start_with_failover(
    config: ManagerConfig,
    backend: WireguardBackend,
    failover: Option<FailoverOptions>,
    client: kube::Client,
) -> Result<RunningManager, StartError> {
    let cancel = CancellationToken::new();
    let state = NodeState::default();
    let cache = PodCache::default();
    let metrics = Metrics::default();
    let listener = socket::bind(&config.socket_path).await?;
    let http = match config.http_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Http(addr, e))?,
        ),
        None => None,
    };
    let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
    let installer = ConflistInstaller::new(
        &config.cni_conf_dir,
        PluginEntry {
            socket_path: config.socket_path.display().to_string(),
            excluded_cidrs: config.exception_cidrs.clone(),
            handshake_timeout_seconds: config.handshake_timeout.as_secs().max(1),
            wireguard_backend: backend,
            state_dir: records_dir(&config.socket_path).display().to_string(),
        },
    );
    let mut tasks = JoinSet::new();
    let (gateways, watch_gateways) = gateways::start(
        client.clone(),
        egress_cni_proto::selectors::path(&config.socket_path),
        state.clone(),
        cancel.clone(),
    );
    tasks.spawn(watch_gateways);
    let handler = RequestHandler::new(
        client.clone(),
        config.node_name.clone(),
        cache.clone(),
        gateways.clone(),
        metrics.clone(),
    );
    if config.attach_running_pods {
        tasks.spawn(running::run(
            running::Attachments {
                state_dir: records_dir(&config.socket_path),
                cache: cache.clone(),
                state: state.clone(),
                gateways: gateways.clone(),
                attacher: std::sync::Arc::new(running::apply::TunnelAttacher::new(
                    egress_pod_tunnel::dataplane::DataplaneTunnel,
                    handler.clone(),
                    config.handshake_timeout,
                )),
                client: client.clone(),
                node: config.node_name.clone(),
            },
            cancel.clone(),
        ));
    }
    tasks.spawn(installer.clone().run(
        config.conflist_poll_interval,
        state.clone(),
        cancel.clone(),
    ));
    tasks.spawn(pod_watch::run(
        Api::<Pod>::all(client.clone()),
        config.node_name.clone(),
        cache.clone(),
        state.clone(),
        metrics.clone(),
        cancel.clone(),
    ));
    if let Some(options) = failover {
        tasks.spawn(failover::run(
            options,
            client.clone(),
            records_dir(&config.socket_path),
            metrics.clone(),
            cancel.clone(),
        ));
    }
    tasks.spawn(taint::run(
        client,
        config.node_name.clone(),
        state.clone(),
        metrics.clone(),
        cancel.clone(),
    ));
    let (nofile, open_fds) = connections::fd_budget();
    let limit = connections::effective_limit(config.max_connections, nofile, open_fds);
    tracing::info!(
        limit,
        configured = config.max_connections,
        open_file_limit = nofile,
        open_files = open_fds,
        "plugin connections capped"
    );
    let settings = socket::ServeSettings {
        allowed_uids: config.allowed_uids.clone(),
        connections: connections::Connections::new(limit, metrics.plugin_connections.clone()),
        read_timeout: exchange::READ_TIMEOUT,
    };
    state.set_listening(true);
    tasks.spawn(socket::serve(
        listener,
        config.socket_path.clone(),
        handler,
        settings,
        metrics.clone(),
        cancel.clone(),
    ));
    if let Some(l) = http {
        tasks.spawn(http::serve(
            l,
            state.clone(),
            metrics.clone(),
            cancel.clone(),
        ));
    }
    tracing::info!(node = %config.node_name, socket = %config.socket_path.display(), "egress-cni-manager started");
    Ok(RunningManager {
        cancel,
        tasks,
        installer,
        uninstall_on_exit: config.uninstall_on_exit,
        state,
        cache,
        metrics,
        http_addr,
    })
}

impl RunningManager {
    /// Stops accepting, lets in-flight requests finish, stops the watches and (when
    /// configured) removes our conflist; the main config is never touched.
    pub async fn shutdown(mut self) {
        self.state.set_listening(false);
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        if self.uninstall_on_exit {
            match self.installer.uninstall() {
                Ok(removed) => tracing::info!(removed, "uninstalled chained CNI conflist"),
                Err(e) => tracing::error!("{}", error_chain(&e)),
            }
        }
    }

    /// A token that is cancelled when the manager stops.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits until the manager is ready or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.state.ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}
