//! `--help` of workspace binaries whose clap arguments are private to their `main.rs`. Uses
//! `target/debug/<bin>` when it is newer than the package's sources (`make test` builds every
//! binary first); otherwise runs `cargo build --workspace --bins` as `make test` does (same
//! feature resolution, so the artifacts are shared rather than rebuilt per package).

use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

/// Why the help text could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HelpError {
    /// cargo failed.
    #[error("failed to build {bin} (package {package}): {stderr}")]
    Build {
        /// Package.
        package: String,
        /// Binary.
        bin: String,
        /// cargo's stderr.
        stderr: String,
    },
    /// The binary could not run.
    #[error("failed to run {0}")]
    Run(PathBuf, #[source] std::io::Error),
}

fn newest_source(dir: &std::path::Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_source(&path)
        } else {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}

/// `target/debug/<bin> --help`, building the workspace binaries first when it is stale.
pub fn help(package: &str, bin: &str) -> Result<String, HelpError> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    let exe = target.join("debug").join(bin);
    let pkg = crate::workspace_root().join("crates").join(package);
    let built = std::fs::metadata(&exe).and_then(|m| m.modified()).ok();
    let fresh = built.is_some() && built >= newest_source(&pkg.join("src"));
    if !fresh {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(&cargo)
            .current_dir(crate::workspace_root())
            .args(["build", "-q", "--workspace", "--bins"])
            .output()
            .map_err(|e| HelpError::Run(PathBuf::from(&cargo), e))?;
        if !out.status.success() {
            return Err(HelpError::Build {
                package: package.into(),
                bin: bin.into(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    let out = Command::new(&exe)
        .arg("--help")
        .output()
        .map_err(|e| HelpError::Run(exe.clone(), e))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
