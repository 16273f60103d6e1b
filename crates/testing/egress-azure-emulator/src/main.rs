//! `egress-azure-emulator` binary: serves the emulator until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use cli::{Args, write_file};
use egress_azure_emulator::{Emulator, EmulatorConfig, Seed, rule_from_flags};
use std::path::PathBuf;

mod cli;

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
        response_forms: args.response_forms,
        page_size: args.page_size as usize,
        tls: args.tls,
    })
    .await
    .context("failed to start the emulator")?;
    // The CA first, then the URL: whoever waits for the URL file can use the CA at once.
    if let Some(pem) = emu.ca_pem() {
        let ca = match (&args.ca_file, &args.url_file) {
            (Some(ca), _) => ca.clone(),
            (None, Some(url)) => PathBuf::from(format!("{}.ca.pem", url.display())),
            (None, None) => anyhow::bail!("--tls needs --ca-file or --url-file"),
        };
        write_file(&ca, pem)?;
        tracing::info!(ca = %ca.display(), "CA certificate written");
    }
    if let Some(url) = &args.url_file {
        write_file(url, &format!("{}\n", emu.arm_url()))?;
    }
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
