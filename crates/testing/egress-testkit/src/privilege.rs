//! Whether a privileged test may run: the root check that prints `SKIPPED` (so a developer
//! without root sees why nothing ran) and the tool check that fails loudly (CI installs the
//! tools, and a silent skip would hide a broken set-up).

/// True when the process runs as root.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Prints why a test does nothing, in the form the test logs are searched for.
pub fn skip(reason: &str) {
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

/// True when a [`crate::Lab`] test may run: root (else prints `SKIPPED`), with wireguard-go
/// and nft installed (else panics).
pub fn privileged() -> bool {
    if !is_root() {
        skip("privileged data-plane test needs root (CI runs it as root)");
        return false;
    }
    require_tools(
        &["wireguard-go", "nft"],
        "apt-get install -y --no-install-recommends wireguard-go nftables",
    );
    true
}
