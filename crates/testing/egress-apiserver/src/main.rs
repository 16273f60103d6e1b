//! `egress-apiserver`: runs the in-memory Kubernetes API server on 127.0.0.1, writes a
//! kubeconfig for it, prints its URL and stops cleanly on SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use egress_apiserver::{ApiServer, ServerConfig};

/// In-memory Kubernetes API server for tests and the simulator.
#[derive(Debug, Parser)]
#[command(name = "egress-apiserver", version)]
struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "EGRESS_APISERVER_PORT", default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig for the server to this file.
    #[arg(long, env = "EGRESS_APISERVER_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// CRD files or directories to serve from the start (repeatable).
    #[arg(long, env = "EGRESS_APISERVER_CRDS")]
    crds: Vec<PathBuf>,
    /// Change events kept for watch resumption.
    #[arg(long, default_value_t = 10_000)]
    history_limit: usize,
    /// Milliseconds between watch BOOKMARK events.
    #[arg(long, default_value_t = 1000)]
    bookmark_interval_ms: u64,
    /// Do not run the deployment and replicaset controllers (Deployments then get no pods).
    #[arg(long)]
    without_controllers: bool,
    /// The kubelet serving every node's pod log/exec/attach/portforward:
    /// http://HOST:PORT or unix:/path/to/socket.
    #[arg(long, env = "EGRESS_APISERVER_KUBELET_URL")]
    kubelet_url: Option<egress_apiserver::KubeletAddr>,
    /// Only connections from processes of this user ID (on this machine's loopback) may use
    /// pods' log/exec/attach/portforward (the kubelet runs commands as its own user).
    #[arg(long)]
    kubelet_allowed_uid: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: these logs usually go to files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = ServerConfig {
        port: args.port,
        crd_paths: args.crds,
        history_limit: args.history_limit,
        bookmark_interval: Duration::from_millis(args.bookmark_interval_ms),
        controllers: !args.without_controllers,
        kubelet: egress_apiserver::KubeletConfig {
            addr: args.kubelet_url,
            allowed_uid: args.kubelet_allowed_uid,
        },
    };
    let server = ApiServer::start(config)
        .await
        .context("failed to start the API server")?;
    if let Some(path) = &args.kubeconfig {
        server
            .write_kubeconfig(path)
            .context("failed to write the kubeconfig")?;
    }
    println!("{}", server.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to listen for SIGTERM")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
