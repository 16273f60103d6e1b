//! Runs one command inside a User-Mode Linux guest whose kernel has WireGuard, nftables and
//! network namespaces built in (`hack/uml`, `make uml-kernel`), so the production data path
//! (kernel WireGuard) runs in tests on machines whose own kernel lacks it.
//!
//! The guest's root is the host's `/`, mounted read-only through hostfs: binaries and
//! fixtures are read at their host paths, and every write lands in a tmpfs inside the guest
//! (`/run`, `/tmp`, `/var/tmp`, `/dev/shm` and any directory the caller names). The only host
//! directory the guest can write is the run's private result directory, where init puts the
//! exit code. This crate's binary is both the host-side runner (`egress-uml run -- CMD`) and
//! the guest's init (when it runs as PID 1). Test infrastructure only (`publish = false`).

pub mod error;
pub mod guest;
pub mod host;
pub mod job;
pub mod kernel;

pub use error::UmlError;
pub use host::{GuestCommand, Machine, Outcome, run};
