//! Library behind the `egressctl` CLI, so its behaviour is testable without spawning it.

pub mod input;
pub mod validate;
mod workloads;
