//! Whether a privileged test may run: the root check that prints `SKIPPED` (so a developer
//! without root sees why nothing ran, while under `CI=true` a skip is a failure: CI runs as
//! root and a silent skip would hide a broken set-up) and the tool check that fails loudly.

use crate::backend::{Backend, backend};

/// True when the process runs as root.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Prints why a test does nothing, in the form the test logs are searched for; panics instead
/// when `CI=true`, where every privileged test must run.
pub fn skip(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a privileged test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Panics unless every tool is on `PATH`; the message names the `install` command.
pub fn require_tools(tools: &[&str], install: &str) {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(found, "{tool} is missing: {install}");
    }
}

/// True when a [`crate::Lab`] test may run: root (else prints `SKIPPED`), with nft and, for
/// the userspace backend, wireguard-go installed (else panics).
pub fn privileged() -> bool {
    if !is_root() {
        skip("privileged data-plane test needs root (CI runs it as root)");
        return false;
    }
    match backend() {
        Backend::Userspace => require_tools(
            &["wireguard-go", "nft"],
            "apt-get install -y --no-install-recommends wireguard-go nftables",
        ),
        Backend::Kernel => require_tools(
            &["nft"],
            "apt-get install -y --no-install-recommends nftables",
        ),
    }
    true
}
