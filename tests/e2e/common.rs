//! Shared helpers: the root check, one-at-a-time lock, a per-test state directory whose runs
//! are torn down on drop (also when the test panics), and waiting on conditions.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Everything a test needs; tears its runs down on drop.
pub struct Lab {
    pub root: PathBuf,
    _tmp: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = egress_sim::cli::down(&self.root);
    }
}

/// `None` (after printing SKIPPED) when not root.
pub fn lab(test: &str) -> Option<Lab> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: needs root (network namespaces)");
        return None;
    }
    let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    Some(Lab {
        root: tmp.path().join("state"),
        _tmp: tmp,
        _lock: lock,
    })
}

/// Path of a scenario file shipped with the crate.
pub fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Writes a scenario into the lab and returns its path.
pub fn write_scenario(lab: &Lab, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(&lab.root).unwrap();
    let p = lab.root.parent().unwrap().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits until `f` holds, failing with `what` after `timeout`.
pub async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Namespaces under /run/netns whose name starts with `prefix`.
pub fn namespaces_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
