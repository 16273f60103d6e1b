//! Which WireGuard implementation the simulated nodes use: wireguard-go by default (the host
//! kernel here has no WireGuard), the kernel module with `EGRESS_WIREGUARD_BACKEND=kernel`,
//! which `egress-sim run --kernel-wireguard` sets when it re-runs the whole simulation inside
//! one User-Mode Linux guest (see [`crate::uml`]).

/// Environment variable naming the backend: `userspace` (default) or `kernel`.
pub const BACKEND_ENV: &str = "EGRESS_WIREGUARD_BACKEND";

/// An unknown value of [`BACKEND_ENV`].
#[derive(Debug, thiserror::Error)]
#[error("{BACKEND_ENV}={0:?}: expected \"userspace\" or \"kernel\"")]
pub struct BackendError(String);

/// The `--wireguard-backend` value for the gateway daemons and CNI managers.
pub fn checked() -> Result<&'static str, BackendError> {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("") | Ok("userspace") => Ok("userspace"),
        Ok("kernel") => Ok("kernel"),
        Ok(other) => Err(BackendError(other.into())),
    }
}

/// [`checked`] for building command lines, after `prereq::check` has refused a bad value.
pub fn wireguard_backend() -> &'static str {
    checked().unwrap_or("userspace")
}
