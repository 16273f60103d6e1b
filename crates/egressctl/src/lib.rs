//! Library behind the `egressctl` CLI (and the `kubectl-egress` plugin), so its behaviour is
//! testable without spawning it: `validate` (offline admission), `status` and `explain` (what
//! the components publish in the Kubernetes API, read with the user's kubeconfig), `completion`.
//! Reading (`cluster`) is separate from deciding (`status`, `explain`: pure, over a
//! `cluster::Snapshot`) and from printing (`output`).

pub mod cli;
pub mod cluster;
pub mod explain;
pub mod input;
pub mod output;
pub mod routing;
pub mod status;
pub mod validate;
mod workloads;
