//! Where the UML kernel comes from: `EGRESS_UML_KERNEL` if set, else `hack/uml/build-kernel.sh`
//! of this repository, which builds it once per machine into a cache outside the repo and
//! prints its path (the script's build log goes to stderr, so a first build is visible).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::UmlError;

/// Environment variable naming a ready kernel binary (skips the build script).
pub const KERNEL_ENV: &str = "EGRESS_UML_KERNEL";

/// The repository's build script.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../hack/uml/build-kernel.sh")
}

/// The kernel to boot: `EGRESS_UML_KERNEL`, or the cached build (building it when missing).
pub fn locate() -> Result<PathBuf, UmlError> {
    match from_env() {
        Some(path) => checked(path),
        None => script(false)?.ok_or_else(|| UmlError::Kernel {
            script: build_script(),
            detail: "it printed no kernel path".into(),
        }),
    }
}

/// Like [`locate`], but never builds: `None` when this machine has no cached kernel yet.
pub fn cached() -> Result<Option<PathBuf>, UmlError> {
    match from_env() {
        Some(path) => checked(path).map(Some),
        None => script(true),
    }
}

fn from_env() -> Option<PathBuf> {
    std::env::var_os(KERNEL_ENV).map(PathBuf::from)
}

/// Runs the build script; `None` when `--cached` found nothing (its exit code 2).
fn script(cached_only: bool) -> Result<Option<PathBuf>, UmlError> {
    let script = build_script();
    let fail = |detail: String| UmlError::Kernel {
        script: script.clone(),
        detail,
    };
    let mut cmd = Command::new(&script);
    if cached_only {
        cmd.arg("--cached");
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if cached_only && out.status.code() == Some(2) {
        return Ok(None);
    }
    if !out.status.success() {
        return Err(fail(format!("it exited with {}", out.status)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(path) => checked(PathBuf::from(path.trim())).map(Some),
        None => Err(fail("it printed no kernel path".into())),
    }
}

fn checked(path: PathBuf) -> Result<PathBuf, UmlError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
        _ => Err(UmlError::KernelMissing(path)),
    }
}
