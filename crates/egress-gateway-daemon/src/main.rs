//! `egress-gateway-daemon` binary: flags (environment fallbacks, see `cli`), logging, then the
//! daemon until SIGTERM / Ctrl-C (a drain first only when the node is going away). With the
//! first argument `lb-probe` it is the keeper that answers the load balancer's probe from
//! the daemon's state file instead (`keeper`).

use std::time::Duration;

use clap::Parser;
use egress_gateway_daemon::Daemon;
use egress_gateway_daemon::cli::{Args, LbProbeArgs, listen, prepare};
use egress_gateway_daemon::keeper::{KeeperConfig, serve_keeper};
use egress_runtime::{LogFormat, LogWriter, init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("lb-probe") {
        return lb_probe(LbProbeArgs::parse_from(std::env::args().skip(1))).await;
    }
    let args = Args::parse();
    init_tracing(LogFormat::json_if(args.log_json), LogWriter::Stderr);
    let (client, dataplane, config, listeners, options) = prepare(&args).await?;
    let daemon = Daemon::start_with(client, dataplane, config, listeners, options);
    shutdown_signal().await;
    daemon.terminate();
    daemon.wait().await;
    Ok(())
}

async fn lb_probe(args: LbProbeArgs) -> anyhow::Result<()> {
    init_tracing(LogFormat::json_if(args.log_json), LogWriter::Stderr);
    let listener = listen(std::net::SocketAddr::from(([0, 0, 0, 0], args.port)))?;
    let config = KeeperConfig {
        state_file: args.state_file,
        stale_after: Duration::from_secs(args.stale_after_seconds),
        lb_probers: args.lb_prober_ips,
    };
    tracing::info!(port = args.port, state_file = %config.state_file.display(), "answering the load-balancer probe from the gateway daemon's state file");
    serve_keeper(listener, config, shutdown_signal()).await;
    Ok(())
}
