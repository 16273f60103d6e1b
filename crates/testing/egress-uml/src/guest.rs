//! The guest side: this crate's binary as PID 1 of the UML kernel. It reads the job (before
//! hiding the host's `/tmp`), mounts what a Linux userland expects (proc, sysfs, devtmpfs,
//! devpts) and an empty tmpfs on every directory a test writes to, brings `lo` up, runs the
//! command with its console as stdout and stderr, reaps every process, writes the exit code
//! into the run's result directory (the one host directory mounted writable), kills what is
//! left and powers off. Any failure is reported on the console and still powers off.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{MsFlags, mount, umount};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::UmlError;
use crate::job::{DEFAULT_TMPFS, EXIT_CODE_FILE, JOB_ENV, Job};

/// Where the result directory is mounted inside the guest (under the `/run` tmpfs).
const RESULT_MOUNT: &str = "/run/egress-uml-result";

/// Runs the job and powers off; never returns.
pub fn init() -> ! {
    let code = match run_job() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("egress-uml init: {e}");
            // The host reports "no exit code" and shows this message above it.
            None
        }
    };
    if let Some(code) = code {
        eprintln!("egress-uml: command exited with {code}");
    }
    power_off()
}

fn run_job() -> Result<Option<i32>, UmlError> {
    let path = std::env::var(JOB_ENV)
        .map_err(|_| UmlError::guest("find the job")(format!("{JOB_ENV} is not set")))?;
    let text =
        std::fs::read(&path).map_err(|e| UmlError::guest(format!("read {path}"))(e.to_string()))?;
    let job: Job = serde_json::from_slice(&text)
        .map_err(|e| UmlError::guest(format!("parse {path}"))(e.to_string()))?;
    mount_system(&job)?;
    loopback_up();
    let code = run_command(&job)?;
    record(&job.result_dir, code)?;
    Ok(Some(code))
}

fn mount_fs(source: &str, target: &Path, fstype: &str, data: Option<&str>) -> Result<(), UmlError> {
    let flags = MsFlags::MS_NOSUID;
    mount(Some(source), target, Some(fstype), flags, data).map_err(|e| {
        UmlError::guest(format!("mount {fstype} on {}", target.display()))(e.to_string())
    })
}

fn mount_system(job: &Job) -> Result<(), UmlError> {
    mount_fs("proc", Path::new("/proc"), "proc", None)?;
    mount_fs("sysfs", Path::new("/sys"), "sysfs", None)?;
    // The UML defconfig mounts devtmpfs on /dev itself (CONFIG_DEVTMPFS_MOUNT): EBUSY.
    match mount_fs("devtmpfs", Path::new("/dev"), "devtmpfs", None) {
        Err(UmlError::Guest { detail, .. }) if detail.starts_with("EBUSY") => {}
        other => other?,
    }
    // The guest's own devtmpfs is writable; the mount points under it and the links udev
    // would make (`nft -f /dev/stdin` needs one) do not exist yet.
    for dir in ["/dev/pts", "/dev/shm"] {
        std::fs::create_dir_all(dir)
            .map_err(|e| UmlError::guest(format!("create {dir}"))(e.to_string()))?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(UmlError::guest(format!("link {link}"))(e.to_string()));
            }
            _ => {}
        }
    }
    mount_fs(
        "devpts",
        Path::new("/dev/pts"),
        "devpts",
        Some("ptmxmode=0666"),
    )?;
    let extra = job.tmpfs.iter().map(PathBuf::as_path);
    for dir in DEFAULT_TMPFS.iter().map(Path::new).chain(extra) {
        mount_fs("tmpfs", dir, "tmpfs", Some("mode=1777"))?;
    }
    std::fs::create_dir_all(RESULT_MOUNT)
        .map_err(|e| UmlError::guest(format!("create {RESULT_MOUNT}"))(e.to_string()))?;
    let host = job.result_dir.to_string_lossy();
    mount_fs("none", Path::new(RESULT_MOUNT), "hostfs", Some(&host))
}

/// The loopback of the root namespace: in-process servers of the tests listen on 127.0.0.1.
fn loopback_up() {
    let ok = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("egress-uml init: warning: could not set lo up");
    }
}

/// Spawns the command and reaps every process until it is gone; its code, or 128 + signal.
fn run_command(job: &Job) -> Result<i32, UmlError> {
    let (program, args) = job
        .argv
        .split_first()
        .ok_or_else(|| UmlError::guest("run the command")("empty argv".into()))?;
    let path = job
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/sbin:/usr/bin:/sbin:/bin", |(_, v)| v.as_str());
    let resolved = resolve(program, path);
    let child = Command::new(&resolved)
        .args(args)
        .env_clear()
        .envs(job.env.iter().cloned())
        .current_dir(&job.cwd)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| UmlError::guest(format!("start {program}"))(e.to_string()))?;
    let main = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // As PID 1 every orphan is ours: reap all of them, note the command's own end.
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Ok(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(UmlError::guest("wait for the command")(e.to_string())),
        }
    }
}

/// `program` searched on `path` the way a shell does (the child gets the job's PATH, but
/// `Command` resolves the program with init's own).
fn resolve(program: &str, path: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

fn record(result_dir: &Path, code: i32) -> Result<(), UmlError> {
    // Everything the command left running goes before the result is written.
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while waitpid(None::<Pid>, Some(WaitPidFlag::__WALL)).is_ok() {}
    let file = Path::new(RESULT_MOUNT).join(EXIT_CODE_FILE);
    std::fs::write(&file, format!("{code}\n")).map_err(|e| {
        UmlError::guest(format!(
            "write the exit code to {} (host {})",
            file.display(),
            result_dir.display()
        ))(e.to_string())
    })?;
    let _ = umount(RESULT_MOUNT);
    Ok(())
}

fn power_off() -> ! {
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Fallback measured on this host: sysrq `o` powers UML off.
    let _ = std::fs::write("/proc/sysrq-trigger", "o");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
