//! `egress-sim`: flags, logging, and the three commands (`run`, `up`, `down`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Simulated kube-egress-gateway cluster on one Linux machine (root).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Bring a scenario up, wait for readiness, report each pod's egress IP, tear down.
    Run {
        /// Scenario file (YAML).
        scenario: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Run the whole simulation inside a User-Mode Linux guest with kernel WireGuard
        /// (the production backend; builds the kernel once per machine, see docs/testing.md).
        #[arg(long)]
        kernel_wireguard: bool,
        /// Run the operator, cni-managers, gateway daemons and plugin from the OCI archives
        /// in this directory (`make images` writes them to target/images), with podman.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
    },
    /// Bring a scenario up and keep it running; prints the kubeconfig path.
    Up {
        /// Scenario file (YAML).
        scenario: PathBuf,
        /// As for `run`.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
    },
    /// Remove every simulator run on this machine (also after a crash).
    Down,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only on a terminal: these logs usually go to files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let result = match args.command {
        Cmd::Run {
            scenario,
            json,
            kernel_wireguard: true,
            images,
        } => {
            if images.is_some() {
                eprintln!(
                    "egress-sim: --kernel-wireguard and --images cannot be combined (podman does not run inside the UML guest)"
                );
                return ExitCode::from(2);
            }
            return match egress_sim::uml::run(&scenario, json) {
                Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
                Err(e) => {
                    eprintln!("egress-sim: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Cmd::Run {
            scenario,
            json,
            images,
            ..
        } => egress_sim::cli::run(&scenario, json, images.as_deref()).await,
        Cmd::Up { scenario, images } => egress_sim::cli::up(&scenario, images.as_deref())
            .await
            .map(|()| true),
        Cmd::Down => egress_sim::cli::down(&egress_sim::cli::state_root()).map(|_| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("egress-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}
