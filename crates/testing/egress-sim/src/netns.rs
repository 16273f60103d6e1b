//! Network namespaces and the `ip`/`nft` tools: create and delete named namespaces, run batches
//! of `ip` commands, load nftables rulesets, run a closure on a thread inside a namespace
//! (sockets made there stay there), and find every process living in a namespace.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A tool failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The tool could not be started.
    #[error("failed to run {tool}: {source}")]
    Spawn {
        /// Tool.
        tool: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The tool reported an error.
    #[error("failed to {what}: {stderr}")]
    Failed {
        /// What we tried.
        what: String,
        /// Its message.
        stderr: String,
    },
    /// Entering a namespace failed.
    #[error("failed to enter network namespace {name}: {reason}")]
    Enter {
        /// Namespace.
        name: String,
        /// Cause.
        reason: String,
    },
}

/// Path of a named namespace.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Whether the named namespace exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

fn run(mut cmd: Command, what: &str, stdin: Option<&str>) -> Result<String, NetnsError> {
    let tool = format!("{:?}", cmd.get_program());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| NetnsError::Spawn {
        tool: tool.clone(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|source| NetnsError::Spawn { tool, source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| NetnsError::Spawn {
            tool: what.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Failed {
            what: what.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates a named namespace with `lo` up and forwarding set as asked.
pub fn create(name: &str, forwarding: bool) -> Result<(), NetnsError> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "add", name]);
    run(cmd, &format!("create network namespace {name}"), None)?;
    let fwd = if forwarding { 1 } else { 0 };
    batch(
        Some(name),
        &[
            "link set lo up".to_string(),
            format!("netns exec {name} sysctl -qw net.ipv4.ip_forward={fwd}"),
        ],
    )
}

/// Deletes a named namespace (a missing one is fine).
pub fn delete(name: &str) -> Result<(), NetnsError> {
    if !exists(name) {
        return Ok(());
    }
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "delete", name]);
    run(cmd, &format!("delete network namespace {name}"), None).map(|_| ())
}

/// Runs `ip` commands (one per line, as for `ip -batch`) in a namespace (or the current one).
/// Lines starting with `netns exec` are run as separate commands.
pub fn batch(ns: Option<&str>, lines: &[String]) -> Result<(), NetnsError> {
    let (exec, ip): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| l.starts_with("netns exec "));
    if !ip.is_empty() {
        let mut cmd = Command::new("ip");
        if let Some(ns) = ns {
            cmd.args(["-n", ns]);
        }
        cmd.args(["-batch", "-"]);
        let input: String = ip.iter().map(|l| format!("{l}\n")).collect();
        run(
            cmd,
            &format!("configure {}", ns.unwrap_or("root namespace")),
            Some(&input),
        )
        .map_err(|e| with_lines(e, &input))?;
    }
    for line in exec {
        let mut cmd = Command::new("ip");
        cmd.args(line.split_whitespace());
        run(cmd, line, None)?;
    }
    Ok(())
}

fn with_lines(e: NetnsError, input: &str) -> NetnsError {
    match e {
        NetnsError::Failed { what, stderr } => NetnsError::Failed {
            what,
            stderr: format!("{stderr} (commands: {})", input.replace('\n', "; ")),
        },
        other => other,
    }
}

/// Loads an nftables ruleset (text) inside a namespace.
pub fn nft(ns: &str, ruleset: &str) -> Result<(), NetnsError> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft", "-f", "-"]);
    run(cmd, &format!("load nftables rules in {ns}"), Some(ruleset)).map(|_| ())
}

/// Sets a sysctl inside a namespace.
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), NetnsError> {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]);
    run(cmd, &format!("set {key} in {ns}"), None).map(|_| ())
}

/// Runs `f` on a new thread inside the named namespace and returns its result.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let file = std::fs::File::open(path(name)).map_err(|e| NetnsError::Enter {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    let owned = name.to_string();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| e.to_string())?;
        Ok::<T, String>(f())
    })
    .join()
    .map_err(|_| NetnsError::Enter {
        name: owned.clone(),
        reason: "thread failed".into(),
    })?
    .map_err(|reason| NetnsError::Enter {
        name: owned,
        reason,
    })
}

/// Inode of a namespace file (what `/proc/PID/ns/net` links to).
pub fn inode(name: &str) -> Option<u64> {
    std::fs::metadata(path(name)).ok().map(|m| m.ino())
}

/// PIDs of every process whose network namespace has one of these inodes.
pub fn pids_in(inodes: &[u64]) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            && inodes.contains(&meta.ino())
        {
            out.push(pid);
        }
    }
    out
}

/// Whether a command is on PATH (or an executable path).
pub fn have_tool(tool: &str) -> bool {
    if tool.contains('/') {
        return std::path::Path::new(tool).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}
