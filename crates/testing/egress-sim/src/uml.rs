//! `egress-sim run --kernel-wireguard`: the same run, inside one User-Mode Linux guest whose
//! kernel has WireGuard (hack/uml), with every component on the kernel backend. The guest sees
//! the host's files read-only and keeps its namespaces, `/run` and `/tmp` to itself, so the
//! simulation behaves exactly as on the host, with the production data path.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use egress_uml::{GuestCommand, Machine};

use crate::backend::BACKEND_ENV;

/// Guest memory: the API server, emulator, operator, one daemon and manager per node and the
/// kubelet's plugins, all debug builds, fit in well under this.
const MEM_MIB: u32 = 3072;
/// Longer than any scenario's readiness timeout plus teardown.
const TIMEOUT: Duration = Duration::from_secs(1800);

/// Re-runs `egress-sim run <scenario> [--json]` in a guest; returns its exit code.
pub fn run(scenario: &Path, json: bool) -> Result<i32> {
    let me = std::env::current_exe().context("find the egress-sim binary")?;
    let init = crate::procs::find_binary("egress-uml", "egress-uml")?;
    let kernel = egress_uml::kernel::locate()?;
    let scenario = std::fs::canonicalize(scenario)
        .with_context(|| format!("find the scenario {}", scenario.display()))?;
    let mut argv = vec![
        me.display().to_string(),
        "run".into(),
        scenario.display().to_string(),
    ];
    if json {
        argv.push("--json".into());
    }
    let mut env: Vec<(String, String)> = ["PATH", "RUST_LOG", "EGRESS_SIM_CRDS"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    env.push((BACKEND_ENV.into(), "kernel".into()));
    let outcome = egress_uml::run(
        &Machine {
            kernel,
            init,
            mem_mib: MEM_MIB,
            timeout: TIMEOUT,
        },
        &GuestCommand {
            argv,
            env,
            cwd: Some(std::env::current_dir().context("read the working directory")?),
            tmpfs: Vec::new(),
        },
    )?;
    Ok(outcome.exit_code)
}
