//! Real executors: namespaces, rtnetlink, sysctls under `/proc/sys`, and nftables through the
//! `nft` binary, each run inside the target namespace. WireGuard backends are in
//! `crate::wireguard`.

mod netlink;
mod nft;
mod sysctl;

pub use netlink::NetlinkLinks;
pub use nft::NftTables;
pub use sysctl::ProcSysctl;

use std::sync::Arc;

use async_trait::async_trait;

use crate::control::{Dataplane, NetnsControl, WireGuardControl};
use crate::names::{NetnsName, NetnsRef};
use crate::netns::{self, NetnsError};

/// Named namespaces under `/run/netns`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemNetns;

#[async_trait]
impl NetnsControl for SystemNetns {
    async fn exists(&self, netns: &NetnsRef) -> Result<bool, NetnsError> {
        Ok(match netns {
            NetnsRef::Current => true,
            NetnsRef::Named(name) => netns::netns_exists(name),
            NetnsRef::Path(path) => path.exists(),
        })
    }

    async fn create(&self, name: &NetnsName) -> Result<(), NetnsError> {
        let name = name.clone();
        blocking(move || netns::create_netns(&name)).await
    }

    async fn delete(&self, name: &NetnsName) -> Result<(), NetnsError> {
        let name = name.clone();
        blocking(move || netns::delete_netns(&name)).await
    }
}

async fn blocking<F>(f: F) -> Result<(), NetnsError>
where
    F: FnOnce() -> Result<(), NetnsError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetnsError::Thread {
            netns: NetnsRef::Current,
            reason: e.to_string(),
        })?
}

impl Dataplane {
    /// The real executors, with the given WireGuard backend (see `crate::wireguard`). The
    /// netlink executor is shared so the backend can move links with it.
    pub fn system(links: Arc<NetlinkLinks>, wireguard: Arc<dyn WireGuardControl>) -> Self {
        Dataplane {
            netns: Arc::new(SystemNetns),
            links,
            sysctl: Arc::new(ProcSysctl),
            nft: Arc::new(NftTables::default()),
            wireguard,
        }
    }
}
