//! `egress-azure-emulator` binary: serves the emulator until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use egress_azure_emulator::{Emulator, EmulatorConfig, Seed, rule_from_flags};
use std::path::PathBuf;

/// Azure Resource Manager + IMDS emulator for kube-egress-gateway tests.
///
/// Without --seed the inventory is: subscription 00000000-0000-0000-0000-000000000000,
/// location eastus, resource group rg-egress, VNet aks-vnet 10.0.0.0/16 with subnet aks-subnet
/// 10.0.0.0/24, scale set gw-vmss with two instances (computer names gw-vmss000000 and
/// gw-vmss000001, tags aks-managed-poolName=gwpool, aks-managed-gatewayIPPrefixSize=31), BYO
/// public IP prefix byo-prefix 192.0.2.0/31; new prefixes come from 203.0.113.0/24, standalone
/// public IPs from 198.51.100.0/24. Admin endpoints: /admin/inventory, /admin/ipmap,
/// /admin/lbmap, /admin/requests, /admin/faults.
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Seed file (YAML or JSON) describing the starting inventory.
    #[arg(long, env = "EMULATOR_SEED")]
    seed: Option<PathBuf>,
    /// Port to listen on (0 = any free port).
    #[arg(long, env = "EMULATOR_PORT", default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Polls before a long-running operation completes.
    #[arg(long, env = "EMULATOR_LRO_POLLS", default_value_t = 2)]
    lro_polls: u32,
    /// Retry-After seconds sent with long-running operation answers.
    #[arg(long, env = "EMULATOR_RETRY_AFTER", default_value_t = 0)]
    retry_after: u64,
    /// Reject ARM requests without a bearer token.
    #[arg(long, env = "EMULATOR_REQUIRE_AUTH")]
    require_auth: bool,
    /// Probability (0..=1) that a request gets one of --fault-kinds.
    #[arg(long, env = "EMULATOR_FAULT_RATE")]
    fault_rate: Option<f64>,
    /// Fault kinds for --fault-rate: 429, 500, drop, slowLro, failLro (comma-separated).
    #[arg(long, env = "EMULATOR_FAULT_KINDS", default_value = "429,500")]
    fault_kinds: String,
    /// Only fault operations matching this glob (e.g. 'LoadBalancers.*').
    #[arg(long, env = "EMULATOR_FAULT_OPERATION")]
    fault_operation: Option<String>,
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
    let seed = args.seed.as_deref().map(Seed::from_file).transpose()?;
    let mut faults = Vec::new();
    if let Some(rate) = args.fault_rate {
        faults.push(rule_from_flags(
            rate,
            &args.fault_kinds,
            args.fault_operation.as_deref(),
        )?);
    }
    let emu = Emulator::start(EmulatorConfig {
        host: args.host,
        port: args.port,
        seed,
        lro_polls: args.lro_polls,
        retry_after: args.retry_after,
        require_auth: args.require_auth,
        faults,
    })
    .await
    .context("failed to start the emulator")?;
    // The URL on stdout is the contract for scripts and tests that start the binary.
    println!("{}", emu.arm_url());
    tracing::info!(url = %emu.arm_url(), "emulator listening");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, stopping"),
        r = tokio::signal::ctrl_c() => { r.context("failed to wait for Ctrl-C")?; tracing::info!("Ctrl-C received, stopping") }
    }
    emu.shutdown().await;
    Ok(())
}
