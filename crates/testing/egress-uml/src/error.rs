//! Errors of the runner, each naming what failed and where to look.

use std::path::PathBuf;
use std::time::Duration;

/// Why a UML run could not produce an exit code.
#[derive(Debug, thiserror::Error)]
pub enum UmlError {
    /// `hack/uml/build-kernel.sh` failed or printed no kernel path.
    #[error("failed to build or find the UML kernel with {script}: {detail}")]
    Kernel {
        /// The build script.
        script: PathBuf,
        /// What went wrong (its exit status, or the missing output).
        detail: String,
    },
    /// The configured kernel is not an executable file.
    #[error("the UML kernel {0} does not exist or is not executable (run `make uml-kernel`)")]
    KernelMissing(PathBuf),
    /// A file or process operation of the host side failed.
    #[error("failed to {action}: {source}")]
    Io {
        /// What the runner was doing.
        action: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The guest did not power off in time; the UML process tree was killed.
    #[error("the UML guest did not finish within {0:?}; its processes were killed")]
    Timeout(Duration),
    /// The guest powered off (or crashed) without reporting the command's exit code.
    #[error(
        "the UML guest stopped ({status}) without reporting an exit code; the console output above says why"
    )]
    NoExitCode {
        /// How the UML process ended.
        status: String,
    },
    /// A path the command needs lies where the guest mounts an empty tmpfs.
    #[error(
        "{what} {path} is under {hidden}, which the UML guest hides under its own empty tmpfs \
         (so nothing the guest writes reaches the host): keep the checkout, its target \
         directory and EGRESS_UML_CACHE outside /run, /tmp, /var/tmp and /dev/shm"
    )]
    HiddenPath {
        /// What the path is (`working directory`, `program`).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The tmpfs mount point above it.
        hidden: PathBuf,
    },
    /// The guest's init could not set up or run the command.
    #[error("guest init failed to {action}: {detail}")]
    Guest {
        /// What init was doing.
        action: String,
        /// The underlying error.
        detail: String,
    },
}

impl UmlError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> UmlError {
        let action = action.into();
        move |source| UmlError::Io { action, source }
    }

    pub(crate) fn guest(action: impl Into<String>) -> impl FnOnce(String) -> UmlError {
        let action = action.into();
        move |detail| UmlError::Guest { action, detail }
    }
}
