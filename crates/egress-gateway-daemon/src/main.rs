//! `egress-gateway-daemon` binary: flags (environment fallbacks, see `cli`), logging, then the
//! daemon until SIGTERM / Ctrl-C, which starts the LB-probe drain before exiting.

use clap::Parser;
use egress_gateway_daemon::Daemon;
use egress_gateway_daemon::cli::{Args, prepare};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        fmt.json().init()
    } else {
        fmt.init()
    }
    let (client, dataplane, config, listeners) = prepare(&args).await?;
    let daemon = Daemon::start(client, dataplane, config, listeners);
    shutdown_signal().await;
    daemon.terminate();
    daemon.wait().await;
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
