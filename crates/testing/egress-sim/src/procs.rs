//! Processes of the simulation: locating our binaries, starting them (in a node's network
//! namespace with `nsenter --net`, own process group, output to log files), waiting for their
//! first stdout line, and stopping processes by PID (SIGTERM, then SIGKILL after a grace period).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::state::{self, ProcessRecord};

/// Starting or finding a process failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// A binary of ours is missing.
    #[error("missing binary {name}: looked in {dirs}; build it with `cargo build -p {package}`")]
    MissingBinary {
        /// Binary.
        name: String,
        /// Package that builds it.
        package: String,
        /// Where we looked.
        dirs: String,
    },
    /// Spawn failed.
    #[error("failed to start {name}: {source}")]
    Spawn {
        /// What.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// It died or did not become ready.
    #[error("{name} did not start: {reason} (log: {log})")]
    NotReady {
        /// What.
        name: String,
        /// Why.
        reason: String,
        /// Its log file.
        log: String,
    },
}

/// Where our binaries are looked up: `EGRESS_SIM_BIN_DIR`, the directory of the running
/// executable, then `target/debug` and `target/release` of the workspace.
pub fn bin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("EGRESS_SIM_BIN_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(d) = exe.parent()
    {
        dirs.push(d.to_path_buf());
        // Test executables live in target/debug/deps.
        if d.ends_with("deps")
            && let Some(p) = d.parent()
        {
            dirs.push(p.to_path_buf());
        }
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target");
    dirs.push(ws.join("debug"));
    dirs.push(ws.join("release"));
    dirs
}

/// Finds one of our binaries.
pub fn find_binary(name: &str, package: &str) -> Result<PathBuf, ProcError> {
    let dirs = bin_dirs();
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ProcError::MissingBinary {
            name: name.into(),
            package: package.into(),
            dirs: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How to start one process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Name for messages and log files.
    pub name: String,
    /// Namespace to run in (`None` = the simulator's own).
    pub netns: Option<String>,
    /// Program.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Whether stdout goes to the log file too, in the order written, as a container runtime
    /// keeps both streams of a container in one log: a component's pod shows its whole log
    /// with `kubectl logs` whichever stream it writes (the cni-manager logs to stdout). Off
    /// for processes whose first stdout line is read (`Started::first_line`).
    pub combined_output: bool,
}

impl Launch {
    /// The same launch at CPU priority `nice` (negative: ahead of everything else), through
    /// `nice`, which execs the program (same PID); processes it starts inherit the priority.
    pub fn niced(mut self, nice: i32) -> Launch {
        let program = std::mem::replace(&mut self.program, PathBuf::from("nice"));
        let mut args = vec![
            "-n".to_owned(),
            nice.to_string(),
            program.display().to_string(),
        ];
        args.append(&mut self.args);
        self.args = args;
        self
    }
}

/// A started process.
#[derive(Debug)]
pub struct Started {
    /// Its record (for the state file).
    pub record: ProcessRecord,
    /// Its stdout file.
    pub stdout: PathBuf,
    /// Its stderr (log) file.
    pub log: PathBuf,
    child: std::process::Child,
}

impl Started {
    /// Waits for the first complete stdout line (e.g. a URL), failing if the process exits.
    pub async fn first_line(&mut self, timeout: Duration) -> Result<String, ProcError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.stdout)
                && let Some(line) = text.lines().next()
                && text.contains('\n')
            {
                return Ok(line.trim().to_string());
            }
            self.check_running()?;
            if Instant::now() > deadline {
                return Err(self.not_ready(format!("no output within {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> Result<(), ProcError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(self.not_ready(format!("exited with {status}"))),
            _ => Ok(()),
        }
    }

    /// The PID.
    pub fn pid(&self) -> i32 {
        self.record.pid
    }

    fn not_ready(&self, reason: String) -> ProcError {
        let tail = std::fs::read_to_string(&self.log)
            .map(|t| {
                t.lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .unwrap_or_default();
        ProcError::NotReady {
            name: self.record.name.clone(),
            reason: if tail.is_empty() {
                reason
            } else {
                format!("{reason}; last log lines: {tail}")
            },
            log: self.log.display().to_string(),
        }
    }

    /// Reaps the process if it has exited (avoids zombies after a stop).
    pub fn reap(&mut self) {
        let _ = self.child.try_wait();
    }
}

/// Starts a process with stdout and stderr in `log_dir` (`NAME.out` and `NAME.log`, or both
/// in `NAME.log` with `combined_output`).
pub fn start(launch: &Launch, log_dir: &Path) -> Result<Started, ProcError> {
    let log = log_dir.join(format!("{}.log", launch.name));
    let stdout = if launch.combined_output {
        log.clone()
    } else {
        log_dir.join(format!("{}.out", launch.name))
    };
    let open = |p: &Path| {
        std::fs::File::create(p).map_err(|source| ProcError::Spawn {
            name: launch.name.clone(),
            source,
        })
    };
    let log_file = open(&log)?;
    // One open file description for both streams when combined: a shared offset, so neither
    // stream's lines overwrite the other's.
    let stdout_file = if launch.combined_output {
        log_file.try_clone().map_err(|source| ProcError::Spawn {
            name: launch.name.clone(),
            source,
        })?
    } else {
        open(&stdout)?
    };
    let mut cmd = match &launch.netns {
        // Not `ip netns exec`: it gives the process a private mount namespace, so a named
        // namespace the component creates (the gateway daemon's gateway namespace) would be
        // bind-mounted where neither the host nor the component's next instance sees it.
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", crate::netns::path(ns).display()))
                .arg("--")
                .arg(&launch.program);
            c
        }
        None => Command::new(&launch.program),
    };
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout_file)
        .stderr(log_file);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().map_err(|source| ProcError::Spawn {
        name: launch.name.clone(),
        source,
    })?;
    let pid = child.id() as i32;
    let record = state::process_record(&launch.name, pid).unwrap_or(ProcessRecord {
        name: launch.name.clone(),
        pid,
        start_ticks: 0,
    });
    Ok(Started {
        record,
        stdout,
        log,
        child,
    })
}

/// Stops the recorded processes: SIGTERM to each live one, wait up to `grace`, then SIGKILL.
pub fn stop_all(records: &[ProcessRecord], grace: Duration) {
    let live: Vec<&ProcessRecord> = records.iter().filter(|p| state::is_alive(p)).collect();
    for p in &live {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGTERM);
    }
    wait_gone(&live, grace);
    for p in live.iter().filter(|p| state::is_alive(p)) {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    wait_gone(&live, Duration::from_secs(2));
}

fn wait_gone(procs: &[&ProcessRecord], grace: Duration) {
    let deadline = Instant::now() + grace;
    while procs.iter().any(|p| state::is_alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops arbitrary PIDs (found in our namespaces), SIGTERM then SIGKILL.
pub fn stop_pids(pids: &[i32], grace: Duration) {
    let records: Vec<ProcessRecord> = pids
        .iter()
        .filter_map(|pid| state::process_record("process in a simulated namespace", *pid))
        .collect();
    stop_all(&records, grace);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Starts `sh -c script` and waits (bounded) for it to exit.
    fn run_sh(dir: &Path, combined_output: bool, script: &str) {
        let launch = Launch {
            name: "p".into(),
            netns: None,
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            combined_output,
        };
        let mut started = start(&launch, dir).unwrap();
        for _ in 0..200 {
            if started.check_running().is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("sh did not exit");
    }

    #[test]
    fn combined_output_keeps_both_streams_in_one_log_in_order() {
        let dir = tempfile::tempdir().unwrap();
        run_sh(dir.path(), true, "echo out1; echo err >&2; echo out2");
        let log = std::fs::read_to_string(dir.path().join("p.log")).unwrap();
        assert_eq!(log, "out1\nerr\nout2\n");
        assert!(!dir.path().join("p.out").exists());
    }

    #[test]
    fn separate_output_keeps_stdout_apart_for_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        run_sh(dir.path(), false, "echo out1; echo err >&2; echo out2");
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("p.out"), "out1\nout2\n");
        assert_eq!(read("p.log"), "err\n");
    }
}
