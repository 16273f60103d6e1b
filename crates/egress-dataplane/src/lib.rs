//! Node data plane of kube-egress-gateway: network namespaces, links, addresses, routes,
//! rules, sysctls, WireGuard (kernel and userspace) and nftables, driven by
//! plan-then-apply. Knows nothing of Kubernetes or Azure.
//!
//! Flow: build a desired state ([`GatewayNodeState`] or [`PodTunnelState`]), ask what to read
//! ([`observe_request_for_gateway_node`]), read it ([`Dataplane::observe`]), diff
//! ([`plan_gateway_node`]) into explicit [`Op`]s, and apply them ([`Dataplane::apply`]).

pub mod control;
pub mod error;
pub mod exec;
// The in-memory node is test equipment: production binaries do not compile it.
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod key;
pub mod names;
pub mod netns;
pub mod nft;
pub mod observed;
pub mod op;
pub mod plan;
pub mod spec;
pub mod state;
pub mod wireguard;

pub use control::{ApplyReport, Dataplane, PeerChange};
pub use error::{ApplyError, DataplaneError, ObserveError};
pub use key::{PrivateKey, PublicKey, WgKey};
pub use names::{InterfaceName, NetnsName, NetnsRef};
pub use observed::{ObservedState, WgDeviceId};
pub use op::Op;
pub use plan::{
    PodTeardown, observe_request_for_gateway_node, observe_request_for_pod,
    observe_request_for_pod_teardown, plan_gateway_node, plan_pod, plan_pod_teardown,
};
pub use spec::{AddressSpec, FwMark, NextHop, Peer, RouteSpec, RuleSpec, SnatRule, SysctlKey};
pub use state::{GatewayNodeState, GatewayTunnel, IngressReturnPath, PodRouting, PodTunnelState};
