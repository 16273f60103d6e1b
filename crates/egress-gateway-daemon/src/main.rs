//! `egress-gateway-daemon` binary: flags (environment fallbacks, see `cli`), logging, then the
//! daemon until SIGTERM / Ctrl-C, which starts the LB-probe drain before exiting.

use clap::Parser;
use egress_gateway_daemon::Daemon;
use egress_gateway_daemon::cli::{Args, prepare};
use egress_runtime::{LogFormat, LogWriter, init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(LogFormat::json_if(args.log_json), LogWriter::Stderr);
    let (client, dataplane, config, listeners) = prepare(&args).await?;
    let daemon = Daemon::start(client, dataplane, config, listeners);
    shutdown_signal().await;
    daemon.terminate();
    daemon.wait().await;
    Ok(())
}
