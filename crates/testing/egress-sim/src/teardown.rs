//! Removing what a run created, from its record: the owning simulator (asked to stop first),
//! the processes it started, every process still living in its namespaces (e.g. wireguard-go
//! daemons started by the CNI plugin or a gateway daemon) and their UAPI sockets, the
//! namespaces, recorded paths and the run directory. Works after a crash, too.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns;
use crate::procs;
use crate::state::{self, RunState};

/// What a teardown removed (and what it could not).
#[derive(Debug, Default)]
pub struct TeardownReport {
    /// Processes stopped.
    pub processes: usize,
    /// Namespaces deleted.
    pub namespaces: usize,
    /// Problems (left behind).
    pub problems: Vec<String>,
}

/// Tears down one run. `owner_grace` is how long a live owner gets to clean up by itself.
pub fn teardown(dir: &Path, run: &RunState, owner_grace: Duration) -> TeardownReport {
    let mut report = TeardownReport::default();
    let me = std::process::id() as i32;
    if let Some(owner) = run
        .owner
        .as_ref()
        .filter(|o| o.pid != me && state::is_alive(o))
    {
        let _ = kill(Pid::from_raw(owner.pid), Signal::SIGTERM);
        let deadline = Instant::now() + owner_grace;
        while state::is_alive(owner) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if state::is_alive(owner) {
            let _ = kill(Pid::from_raw(owner.pid), Signal::SIGKILL);
        }
        report.processes += 1;
    }
    let live = run.processes.iter().filter(|p| state::is_alive(p)).count();
    procs::stop_all(&run.processes, Duration::from_secs(5));
    report.processes += live;
    // Containers of `--images` runs whose podman client is gone (it was killed) still run.
    report.problems.extend(crate::images::destroy(dir));

    let inodes: Vec<u64> = run
        .namespaces
        .iter()
        .filter_map(|n| netns::inode(n))
        .collect();
    let pids: Vec<i32> = netns::pids_in(&inodes)
        .into_iter()
        .filter(|p| *p != me)
        .collect();
    let sockets: Vec<String> = pids.iter().filter_map(|p| wireguard_socket(*p)).collect();
    procs::stop_pids(&pids, Duration::from_secs(3));
    report.processes += pids.len();
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    // Pods before nodes before the router: nothing depends on a later one.
    for ns in run.namespaces.iter().rev() {
        if !netns::exists(ns) {
            continue;
        }
        match netns::delete(ns) {
            Ok(()) => report.namespaces += 1,
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    for p in &run.paths {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        if let Err(e) = r
            && e.kind() != std::io::ErrorKind::NotFound
        {
            report
                .problems
                .push(format!("failed to remove {}: {e}", p.display()));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        report
            .problems
            .push(format!("failed to remove {}: {e}", dir.display()));
    }
    restore_inotify_limit(dir, run, &mut report);
    report
}

/// Whether an `egress-cni-manager` process runs on this machine (this run's are stopped by
/// now).
fn cni_manager_running() -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmd| {
            cmd.split(|b| *b == 0)
                .next()
                .is_some_and(|argv0| argv0.ends_with(b"egress-cni-manager"))
        })
}

/// Puts back the host's inotify instance limit the run's CNI managers raised, unless another
/// run still has pods that may need it: a sibling run directory, or any CNI manager still
/// running on the machine (runs of other state roots, e.g. each e2e test's own directory,
/// are not siblings; lowering the limit under them makes their new pods' wireguard-go fail).
fn restore_inotify_limit(dir: &Path, run: &RunState, report: &mut TeardownReport) {
    let Some(before) = run.inotify_instances else {
        return;
    };
    let others = dir
        .parent()
        .and_then(|root| std::fs::read_dir(root).ok())
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path() != dir && e.path().join("state.json").exists())
        || cni_manager_running();
    if others || state::inotify_instances().is_none_or(|now| now <= before) {
        return;
    }
    if let Err(e) = std::fs::write(state::INOTIFY_INSTANCES, format!("{before}\n")) {
        report.problems.push(format!(
            "failed to restore {} to {before}: {e}",
            state::INOTIFY_INSTANCES
        ));
    }
}

/// The UAPI socket of a wireguard-go process (`/run/wireguard/<ifname>.sock`).
pub(crate) fn wireguard_socket(pid: i32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if !args.first()?.ends_with("wireguard-go") {
        return None;
    }
    let ifname = args.iter().skip(1).rfind(|a| !a.starts_with('-'))?;
    (!ifname.contains('/')).then(|| format!("/run/wireguard/{ifname}.sock"))
}
