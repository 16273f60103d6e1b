//! Operator tests against the in-memory API server and the Azure emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batching;
mod common;
mod dual_stack;
mod examples;
mod failures;
mod in_use;
mod leader;
mod lifecycle;
mod response_forms;
mod satisfiable;
mod validation;
mod vm_pool;
