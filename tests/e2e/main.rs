//! End-to-end tests on the simulator (root only: each test prints SKIPPED and passes when not
//! root). They start the real binaries, so build them first (`cargo build --workspace`); a
//! missing one fails the test with the command that builds it. Tests run one at a time (a
//! simulated cluster uses most of a 2-core machine).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attach;
mod cni_restart;
mod common;
mod cpu_load;
mod crash;
mod dual_stack;
mod egress;
mod explain;
mod failover;
mod features;
mod in_use;
mod kubectl_streams;
mod resilience;
mod running;
mod selectors;
mod startup;
mod walkthrough;
