//! Conformance suite of the in-memory API server: what kube-rs, kube-runtime and kubectl rely
//! on, one module per topic (one test binary keeps link time low on 2-core CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod admission_policy;
mod binary;
mod crd;
mod crud;
mod discovery;
mod events;
mod faults;
mod finalizers_gc;
mod kubectl;
mod kubelet;
mod patch;
mod protobuf;
mod watch;
mod workloads;
