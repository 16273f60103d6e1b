//! Processes a test starts or checks for: a guard that stops every wireguard-go daemon an
//! executor started (also when the test panics), and `pgrep` look-ups.

use std::sync::Arc;

use egress_dataplane::InterfaceName;
use egress_dataplane::wireguard::UserspaceWireGuard;

/// Stops every wireguard-go daemon its executor started when dropped.
#[derive(Debug)]
pub struct WireguardGoGuard(pub Arc<UserspaceWireGuard>);

impl Drop for WireguardGoGuard {
    fn drop(&mut self) {
        self.0.stop_all_started();
    }
}

/// True when a process whose full command line matches the `pgrep -f` pattern runs.
pub fn process_running(pattern: &str) -> bool {
    let out = std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    out.status.success()
}

/// True when a wireguard-go daemon serves the interface (or socket) `name`.
pub fn wireguard_go_running(name: &InterfaceName) -> bool {
    process_running(&format!("wireguard-go -f {name}$"))
}
