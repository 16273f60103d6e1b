//! Command-line flags of the `egress-operator` binary (each with an environment fallback) and
//! turning them into a [`Context`] and [`RunOptions`]: cloud config, ARM and Kubernetes
//! clients, metrics, listeners, leader election.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use egress_azure::{ArmClient, ArmMetrics, CloudConfig};

use crate::{AzureSettings, Context, LeaderElection, Metrics, OperatorConfig, RunOptions};

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cloud config is unusable.
    #[error("failed to load the cloud config {path}")]
    CloudConfig {
        /// File.
        path: String,
        /// Why.
        #[source]
        source: egress_azure::ConfigError,
    },
    /// The ARM client could not be built.
    #[error("failed to build the ARM client")]
    Arm(#[from] egress_azure::ClientBuildError),
    /// `--arm-static-token` with a non-emulator endpoint.
    #[error("--arm-static-token is only for a local emulator (http on loopback), not {0}")]
    StaticTokenNotLocal(String),
    /// The Kubernetes client or a listener could not be set up.
    #[error(transparent)]
    Startup(#[from] egress_runtime::StartupError),
}

/// Reconciles StaticGatewayConfigurations to Azure (load balancer, VMSS ipConfigs, prefixes).
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct Args {
    /// Azure cloud config (azure.json keys, YAML or JSON).
    #[arg(
        long,
        env = "CLOUD_CONFIG",
        default_value = "/etc/kubernetes/kube-egress-gateway/azure.json"
    )]
    pub cloud_config: std::path::PathBuf,
    /// Namespace of the gateway key Secrets (and default Lease namespace).
    #[arg(
        long,
        env = "MY_POD_NAMESPACE",
        default_value = "kube-egress-gateway-system"
    )]
    pub namespace: String,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Address of /metrics (also serves /healthz and /readyz).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz (also serves /metrics).
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
    /// Port of the gateway daemons' load-balancer health probe.
    #[arg(long, env = "GATEWAY_LB_PROBE_PORT", default_value_t = 8082)]
    pub gateway_lb_probe_port: u16,
    /// Run the controllers only while holding the leader Lease.
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: --namespace).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Lease name (the original's, so old and new never lead together).
    #[arg(
        long,
        env = "LEADER_ELECTION_ID",
        default_value = "0a299682.microsoft.com"
    )]
    pub leader_election_id: String,
    /// Seconds the lease stays valid without renewal.
    #[arg(long, env = "LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15)]
    pub leader_election_lease_seconds: u64,
    /// Seconds before expiry that the leader renews.
    #[arg(long, env = "LEADER_ELECTION_GRACE_SECONDS", default_value_t = 5)]
    pub leader_election_grace_seconds: u64,
    /// Seconds between drift-repair passes over a healthy gateway pool.
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,
    /// Milliseconds a pool waits for further changes before it is written (batching).
    #[arg(long, env = "DEBOUNCE_MS", default_value_t = 1000)]
    pub debounce_ms: u64,
    /// Fixed ARM bearer token, for a local emulator only (refused unless the ARM endpoint is
    /// plain http on loopback); the cloud config's credential is not used then.
    #[arg(long, env = "ARM_STATIC_TOKEN", hide_env_values = true)]
    pub arm_static_token: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// Builds the context and run options from the flags.
pub async fn prepare(args: Args) -> Result<(Context, RunOptions), StartError> {
    let cloud =
        CloudConfig::from_file(&args.cloud_config).map_err(|source| StartError::CloudConfig {
            path: args.cloud_config.display().to_string(),
            source,
        })?;
    let arm_metrics = ArmMetrics::new();
    let mut arm = ArmClient::builder_from_config(&cloud).metrics(arm_metrics.clone());
    if let Some(token) = &args.arm_static_token {
        let url = &cloud.endpoints.resource_manager;
        let loopback = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if !(url.scheme() == "http" && loopback) {
            return Err(StartError::StaticTokenNotLocal(url.to_string()));
        }
        arm = arm.static_token(token);
    }
    let arm = arm.build()?;
    let client = egress_runtime::kube_client(args.kubeconfig.as_deref()).await?;

    let mut config = OperatorConfig::new(
        &args.namespace,
        AzureSettings::from_cloud_config(&cloud, args.gateway_lb_probe_port),
    );
    config.resync_interval = Duration::from_secs(args.resync_seconds);
    config.debounce = Duration::from_millis(args.debounce_ms);
    config.instance = std::env::var("MY_POD_NAME").ok();
    let identity = config
        .instance
        .clone()
        .unwrap_or_else(|| format!("egress-operator-{}", std::process::id()));
    let ctx = Context::new(client, Arc::new(arm), Metrics::new(&arm_metrics), config);

    let mut opts = RunOptions::default();
    for addr in [args.metrics_addr, args.health_addr] {
        opts.listeners.push(egress_runtime::listen(addr).await?);
    }
    if args.leader_elect {
        opts.leader_election = Some(LeaderElection {
            namespace: args
                .leader_election_namespace
                .unwrap_or_else(|| args.namespace.clone()),
            lease_name: args.leader_election_id,
            identity,
            duration_seconds: args.leader_election_lease_seconds,
            grace_seconds: args.leader_election_grace_seconds,
        });
    }
    Ok((ctx, opts))
}
