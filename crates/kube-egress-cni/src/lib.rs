//! kube-egress-cni: the chained CNI plugin of kube-egress-gateway. For pods annotated with a
//! StaticGatewayConfiguration it adds a WireGuard tunnel to the gateway and the routes that use
//! it; every other pod passes through untouched. Talks to egress-cni-manager over its unix
//! socket; links no Kubernetes client and starts no multi-thread runtime (the data plane runs
//! on a current-thread one).

pub mod cni;
pub mod config;
pub mod errors;
pub mod prev_result;
pub mod report;
pub mod stdin;

/// The data plane steps, shared with egress-cni-manager (which attaches running pods).
pub use egress_pod_tunnel::{dataplane, tunnel};

use rscni_plugin::cni::Plugin;
use rscni_plugin::version::SpecVersion;

/// CNI spec versions this plugin speaks (0.4.0 is the first with CHECK).
pub fn plugin() -> Plugin {
    Plugin::new(
        SpecVersion::CURRENT,
        vec![
            SpecVersion::new(0, 4, 0),
            SpecVersion::new(1, 0, 0),
            SpecVersion::new(1, 1, 0),
        ],
    )
    .msg("kube-egress-cni: chained CNI plugin of kube-egress-gateway")
}
