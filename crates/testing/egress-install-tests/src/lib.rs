//! Helpers for the install tests: render and lint the Helm chart with the pinned helm, parse
//! rendered manifests, model the RBAC they grant, and list the chart values and binary flags
//! the documentation must cover. The tests themselves are in `tests/`.

pub mod bins;
pub mod coverage;
pub mod helm;
pub mod manifests;
pub mod rbac;

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    workspace_root().join("charts/kube-egress-gateway")
}
