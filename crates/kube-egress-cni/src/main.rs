//! `kube-egress-cni`: logging to stderr (stdout carries the CNI result), then one CNI operation.

use std::io::IsTerminal;

use kube_egress_cni::cni::EgressCni;
use kube_egress_cni::dataplane::DataplaneTunnel;
use rscni_plugin::types::ErrorResult;
use rscni_plugin::version::SpecVersion;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EGRESS_CNI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let command = std::env::var("CNI_COMMAND").ok();
    if let Err(e) = kube_egress_cni::stdin::check_and_hand_over(command.as_deref()) {
        // The configuration (and so its cniVersion) could not be read: report in ours.
        let _ = serde_json::to_writer(
            std::io::stdout(),
            &ErrorResult::new(SpecVersion::CURRENT, &e),
        );
        std::process::exit(1);
    }
    let cni = EgressCni::new(DataplaneTunnel);
    if kube_egress_cni::plugin().run(&cni).is_err() {
        // The error result is already on stdout, as the spec requires.
        std::process::exit(1);
    }
}
