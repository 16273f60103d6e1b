//! The host side of one run: writes the job into a fresh run directory, boots the kernel with
//! the host's `/` as a read-only root and this crate's binary as init, streams the console
//! (CRLF turned into LF) while it runs, and returns the exit code the guest wrote into the
//! run directory. The UML process tree runs in its own process group and dies with the
//! runner (`setpriv --pdeathsig KILL`); on timeout the whole group is killed. The run
//! directory (job, `uml_dir`, result) is removed in every case.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::UmlError;
use crate::job::{DEFAULT_TMPFS, EXIT_CODE_FILE, JOB_ENV, Job};

/// How to boot the guest.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The UML kernel binary.
    pub kernel: PathBuf,
    /// The init binary (this crate's `egress-uml`), on the host filesystem.
    pub init: PathBuf,
    /// Guest memory in MiB (UML's `mem=`; host memory is only used as the guest touches it).
    pub mem_mib: u32,
    /// Wall-clock limit from boot to power-off; the process tree is killed after it.
    pub timeout: Duration,
}

/// What the guest command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The command's exit code (128 + signal number when a signal ended it).
    pub exit_code: i32,
    /// Boot to power-off.
    pub elapsed: Duration,
}

/// The command to run: program and arguments, environment, working directory, extra tmpfs
/// mount points.
#[derive(Debug, Clone, Default)]
pub struct GuestCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The command's whole environment.
    pub env: Vec<(String, String)>,
    /// Working directory (defaults to `/`).
    pub cwd: Option<PathBuf>,
    /// Extra directories to hide under an empty tmpfs.
    pub tmpfs: Vec<PathBuf>,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A run directory under the host's temp dir, private to this run, removed on drop.
struct RunDir(PathBuf);

impl RunDir {
    fn create() -> Result<Self, UmlError> {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("egress-uml-{}-{n}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(UmlError::io(format!("create {}", path.display())))?;
        let dir = RunDir(path);
        for sub in ["uml", "result"] {
            std::fs::create_dir(dir.0.join(sub))
                .map_err(UmlError::io(format!("create {}/{sub}", dir.0.display())))?;
        }
        Ok(dir)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Refuses a working directory or program the guest could not see: it mounts empty tmpfs
/// on [`DEFAULT_TMPFS`] and the command's own list, hiding the host's files there.
fn check_visible(command: &GuestCommand) -> Result<(), UmlError> {
    let hidden: Vec<PathBuf> = DEFAULT_TMPFS
        .iter()
        .map(PathBuf::from)
        .chain(command.tmpfs.iter().cloned())
        .collect();
    let program = Path::new(&command.argv[0]);
    let paths = [
        ("working directory", command.cwd.as_deref()),
        ("program", program.is_absolute().then_some(program)),
    ];
    for (what, path) in paths {
        let Some(path) = path else { continue };
        if let Some(dir) = hidden.iter().find(|d| path.starts_with(d)) {
            return Err(UmlError::HiddenPath {
                what,
                path: path.to_path_buf(),
                hidden: dir.clone(),
            });
        }
    }
    Ok(())
}

/// Boots `machine`, runs `command` inside, returns its exit code.
pub fn run(machine: &Machine, command: &GuestCommand) -> Result<Outcome, UmlError> {
    if command.argv.is_empty() {
        return Err(UmlError::guest("run the command")(
            "no command given".into(),
        ));
    }
    check_visible(command)?;
    let dir = RunDir::create()?;
    let job = Job {
        argv: command.argv.clone(),
        env: command.env.clone(),
        cwd: command.cwd.clone().unwrap_or_else(|| PathBuf::from("/")),
        tmpfs: command.tmpfs.clone(),
        result_dir: dir.0.join("result"),
    };
    let job_path = dir.0.join("job.json");
    let text = serde_json::to_vec(&job).map_err(|e| UmlError::io("encode the job")(e.into()))?;
    std::fs::write(&job_path, text)
        .map_err(UmlError::io(format!("write {}", job_path.display())))?;

    let started = Instant::now();
    let mut child = spawn(machine, &dir.0, &job_path)?;
    let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let pumps = [
        child.stdout.take().map(|s| pump(s, std::io::stdout)),
        child.stderr.take().map(|s| pump(s, std::io::stderr)),
    ];
    let status = wait_bounded(&mut child, machine.timeout);
    // Power-off or not, nothing of this run may outlive it.
    let _ = killpg(pgid, Signal::SIGKILL);
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.wait();
            for p in pumps.into_iter().flatten() {
                let _ = p.join();
            }
            return Err(UmlError::Timeout(machine.timeout));
        }
    };
    for p in pumps.into_iter().flatten() {
        let _ = p.join();
    }
    let elapsed = started.elapsed();
    match read_exit_code(&job.result_dir) {
        Some(exit_code) => Ok(Outcome { exit_code, elapsed }),
        None => Err(UmlError::NoExitCode {
            status: status.to_string(),
        }),
    }
}

fn spawn(machine: &Machine, dir: &Path, job: &Path) -> Result<Child, UmlError> {
    if !machine.kernel.is_file() {
        return Err(UmlError::KernelMissing(machine.kernel.clone()));
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "--"])
        .arg(&machine.kernel)
        .arg(format!("mem={}M", machine.mem_mib))
        // The host's / as root, read-only: the guest can read every binary and test fixture
        // at its host path but change nothing (init adds tmpfs where writes are expected).
        .args(["root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro"])
        .arg(format!("init={}", machine.init.display()))
        // Control sockets and pid files of UML go here, not to ~/.uml.
        .arg(format!("uml_dir={}", dir.join("uml").display()))
        .arg("umid=egress-uml")
        // Only the first console, on stdout; no xterms or ptys for the others.
        .args(["con=null", "ssl=null", "con0=fd:0,fd:1", "quiet"])
        .arg(format!("{JOB_ENV}={}", job.display()))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        // UML's memory file: on tmpfs (else UML warns and the guest's RAM is disk-backed),
        // unlinked at once, so it cannot outlive the process.
        .env("TMPDIR", "/dev/shm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd.spawn()
        .map_err(UmlError::io(format!("start {}", machine.kernel.display())))
}

/// Forwards lines from the console to `out`, dropping the CR the guest's tty adds.
fn pump<R: Read + Send + 'static, W: Write + 'static>(source: R, out: fn() -> W) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = strip_cr(&line);
                    let mut w = out();
                    let _ = w.write_all(&text);
                    let _ = w.flush();
                }
            }
        }
    })
}

/// `line` with every `\r` directly before a `\n` (and a trailing lone `\r`) removed.
pub fn strip_cr(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let cr_before_lf = line[i] == b'\r' && (i + 1 == line.len() || line[i + 1] == b'\n');
        if !cr_before_lf {
            out.push(line[i]);
        }
        i += 1;
    }
    out
}

/// Waits until the child exits or `timeout` passes (then returns None, child still alive).
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

fn read_exit_code(result_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(result_dir.join(EXIT_CODE_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{GuestCommand, check_visible, strip_cr};
    use std::path::PathBuf;

    #[test]
    fn a_checkout_under_a_guest_tmpfs_is_refused_before_booting() {
        let cmd = |argv0: &str, cwd: &str, tmpfs: &[&str]| GuestCommand {
            argv: vec![argv0.into()],
            cwd: Some(PathBuf::from(cwd)),
            tmpfs: tmpfs.iter().map(PathBuf::from).collect(),
            ..Default::default()
        };
        assert!(check_visible(&cmd("sh", "/work/main", &[])).is_ok());
        assert!(check_visible(&cmd("/usr/bin/env", "/work/main", &[])).is_ok());
        let err = check_visible(&cmd("sh", "/tmp/fresh", &[])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("working directory /tmp/fresh is under /tmp, which"),
            "{err}"
        );
        let err = check_visible(&cmd("/scratch/t/bin", "/", &["/scratch"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("program /scratch/t/bin is under /scratch"),
            "{err}"
        );
    }

    #[test]
    fn console_line_ends_become_plain_newlines() {
        assert_eq!(strip_cr(b"ok\r\n"), b"ok\n");
        assert_eq!(strip_cr(b"a\rb\r\n"), b"a\rb\n");
        assert_eq!(strip_cr(b"tail\r"), b"tail");
        assert_eq!(strip_cr(b"plain\n"), b"plain\n");
    }
}
