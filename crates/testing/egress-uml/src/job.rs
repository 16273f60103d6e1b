//! The job the host hands to the guest: one command with its environment and working
//! directory, the directories the guest keeps writable in memory, and where the guest reports
//! the exit code. Written by the host as JSON into the run directory, read by the guest's init
//! before it hides the host's `/tmp` under a tmpfs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Kernel command-line word naming the job file; the kernel hands it to init as environment.
pub const JOB_ENV: &str = "EGRESS_UML_JOB";

/// Directories every guest mounts a fresh tmpfs on: everything a test writes lands there.
pub const DEFAULT_TMPFS: &[&str] = &["/run", "/tmp", "/var/tmp", "/dev/shm"];

/// One command to run inside the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Program and arguments; the program is looked up on the job's `PATH`.
    pub argv: Vec<String>,
    /// The whole environment of the command (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory (on the read-only host root, or inside a tmpfs).
    pub cwd: PathBuf,
    /// Directories mounted as empty tmpfs in addition to [`DEFAULT_TMPFS`]; each must exist
    /// on the host (a read-only root cannot grow mount points).
    pub tmpfs: Vec<PathBuf>,
    /// Host directory the guest mounts writable (hostfs) to write the exit code into; the
    /// only place the guest can write on the host, owned by the run and removed after it.
    pub result_dir: PathBuf,
}

/// Name of the file in [`Job::result_dir`] holding the command's exit code.
pub const EXIT_CODE_FILE: &str = "exit-code";
