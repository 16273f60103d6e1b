//! Pure decisions of a pool pass, from what was read and nothing else (no client): which
//! configurations belong to the pool (`members`), the load balancer (`load_balancer`), and the
//! gateway ipConfigs of a scale set's NIC configurations (`scale_set`) or of a VM pool's NICs
//! (`vm_nics`), both on the one ipConfig plan they share (`ip_config`).

pub mod ip_config;
pub mod load_balancer;
pub mod members;
pub mod scale_set;
pub mod vm_nics;
