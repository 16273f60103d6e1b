//! Effects of a pool pass: every read and write of Azure and Kubernetes, each behind the
//! narrow `AzureApi` traits or the kube client, and nothing that decides (the decisions are in
//! `plan`). `pass::apply` writes Azure in this order, each resource at most once per pass, with
//! `If-Match` and a re-read and re-plan on 412: prefixes (`prefixes`), the load balancer
//! (`load_balancer`), the scale-set model and instances (`scale_set`) or the VM pool's NICs
//! (`vm_nics`), deleting prefixes no longer used, dropping the pool's frontend once unused;
//! then the pass writes statuses and releases finalizers (`kubernetes`).

pub mod kubernetes;
pub mod load_balancer;
pub mod node_ips;
pub mod pass;
pub mod prefixes;
pub mod scale_set;
pub mod vm_nics;

pub use node_ips::InstanceIps;
pub use pass::{Applied, Azure, apply};

/// Writes retried after a 412 (someone else changed the resource between our read and write).
pub(crate) const ETAG_ATTEMPTS: usize = 3;
