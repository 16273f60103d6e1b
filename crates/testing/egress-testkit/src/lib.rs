//! Test-only helpers shared by the privileged tests of the data plane, the gateway daemon and
//! the CNI plugin: throwaway network namespaces with unique names that delete themselves on
//! drop (also when a test panics), veth and address wiring, the two-node egress topology the
//! data-plane and gateway tests share, TCP and UDP echo servers run inside
//! namespaces that report the peer address, root checks that print `SKIPPED` (and fail under
//! `CI=true`), the WireGuard backend chosen by `EGRESS_WIREGUARD_BACKEND`, and guards that
//! stop wireguard-go daemons. Only dev-dependencies may use this crate; no production crate
//! links it.
//!
//! Panicking is how a test helper reports a broken set-up, so the workspace's
//! `unwrap_used`/`expect_used`/`panic` lints are lifted for this crate as for test files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod backend;
pub mod lab;
pub mod netns;
pub mod privilege;
pub mod process;
pub mod tcp_echo;
pub mod topology;
pub mod udp_echo;

pub use backend::{Backend, ExecutorGuard, WgInstance, WireGuardExecutor, backend};
pub use egress_dataplane::netns::run_in_netns;
pub use lab::{Lab, name};
pub use netns::{Netns, ip, ip_out};
pub use privilege::{is_root, privileged, require_tools, skip};
pub use process::{WireguardGoGuard, process_running, wireguard_go_running};
pub use tcp_echo::{Client, EchoServer, connect_within};
pub use topology::EgressWorld;
pub use udp_echo::{UdpEcho, UdpStream};
