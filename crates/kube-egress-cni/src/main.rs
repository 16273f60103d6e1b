//! `kube-egress-cni`: logging to stderr (stdout carries the CNI result), then one CNI operation.

use kube_egress_cni::cni::EgressCni;
use kube_egress_cni::dataplane::DataplaneTunnel;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EGRESS_CNI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cni = EgressCni::new(DataplaneTunnel);
    if kube_egress_cni::plugin().run(&cni).is_err() {
        // The error result is already on stdout, as the spec requires.
        std::process::exit(1);
    }
}
