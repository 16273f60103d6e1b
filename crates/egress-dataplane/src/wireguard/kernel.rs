//! Kernel WireGuard backend (production nodes): the link is created with rtnetlink in the
//! namespace that must own the UDP socket under a temporary name, configured there, then
//! moved into the target namespace and renamed in one request. Later calls reach the device
//! through generic netlink from a thread inside its namespace.
//!
//! The privileged tests run it inside User-Mode Linux (docs/testing.md); on a host kernel
//! without the module, creating a device fails with [`WireGuardError::KernelUnsupported`].

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rtnetlink::LinkWireguard;
use wireguard_control::{Backend, Device};

use super::userspace::uapi_name;
use super::{
    device_error, ensure_port_free, interface_update, keepalive_update, observed_from, peer_update,
    wg_name,
};
use crate::control::{LinkControl, PeerChange, WireGuardControl};
use crate::error::{NetlinkError, WireGuardError};
use crate::exec::NetlinkLinks;
use crate::key::PrivateKey;
use crate::names::{InterfaceName, NetnsRef};
use crate::netns::run_in_netns_async;
use crate::observed::{ObservedWgDevice, WgDeviceId};
use crate::spec::Peer;

/// WireGuard through the kernel module.
#[derive(Debug)]
pub struct KernelWireGuard {
    links: Arc<NetlinkLinks>,
    /// Temporary names set with `name_device` (pods), used instead of [`uapi_name`].
    names: Mutex<HashMap<WgDeviceId, InterfaceName>>,
}

const ENODEV: i32 = 19;
/// What creating a `wireguard` link answers on a kernel without the module.
const EOPNOTSUPP: i32 = 95;

impl KernelWireGuard {
    /// A backend creating and moving links with `links`.
    pub fn new(links: Arc<NetlinkLinks>) -> Self {
        Self {
            links,
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Runs a `wireguard-control` call against `name` from inside `netns`.
    async fn in_netns<R: Send + 'static>(
        &self,
        device: &WgDeviceId,
        netns: &NetnsRef,
        name: String,
        action: &str,
        f: impl FnOnce(&wireguard_control::InterfaceName) -> io::Result<R> + Send + 'static,
    ) -> Result<R, WireGuardError> {
        let result = run_in_netns_async(netns, move || wg_name(&name).and_then(|n| f(&n))).await?;
        result.map_err(device_error(device, action))
    }

    async fn require_link(&self, device: &WgDeviceId) -> Result<(), WireGuardError> {
        // Without the link, wireguard-control would create a device in the target namespace,
        // with its socket there too.
        match self.links.index(&device.netns, &device.name).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(WireGuardError::NotFound {
                device: device.clone(),
            }),
            Err(e) => Err(link_error(device, e)),
        }
    }
}

fn link_error(device: &WgDeviceId, e: NetlinkError) -> WireGuardError {
    WireGuardError::Link {
        device: device.clone(),
        source: Box::new(e),
    }
}

#[async_trait]
impl WireGuardControl for KernelWireGuard {
    async fn observe(
        &self,
        device: &WgDeviceId,
    ) -> Result<Option<ObservedWgDevice>, WireGuardError> {
        let name = device.name.as_str().to_owned();
        let result = run_in_netns_async(&device.netns, move || {
            wg_name(&name).and_then(|n| Device::get(&n, Backend::Kernel))
        })
        .await?;
        match result {
            Ok(d) => Ok(Some(observed_from(&d))),
            Err(e) if e.raw_os_error() == Some(ENODEV) || e.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(device_error(device, "read the device")(e)),
        }
    }

    async fn create(
        &self,
        device: &WgDeviceId,
        socket_netns: &NetnsRef,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError> {
        if let Some(port) = listen_port {
            let (dev, ns) = (device.clone(), socket_netns.clone());
            tokio::task::spawn_blocking(move || ensure_port_free(&dev, &ns, port))
                .await
                .map_err(|e| {
                    device_error(device, "check the listen port")(io::Error::other(e.to_string()))
                })??;
        }
        // A temporary name in the socket namespace, so it cannot clash with a device there.
        let named = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(device)
            .cloned();
        let temp: InterfaceName = match named {
            Some(name) => name,
            None => uapi_name(device)
                .parse()
                .map_err(|e: crate::names::NameError| {
                    device_error(device, "name the temporary link")(io::Error::other(e.to_string()))
                })?,
        };
        let h = self
            .links
            .handle(socket_netns)
            .await
            .map_err(|e| link_error(device, e))?;
        h.link()
            .add(LinkWireguard::new(temp.as_str()).build())
            .execute()
            .await
            .map_err(|e| match &e {
                rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == EOPNOTSUPP => {
                    WireGuardError::KernelUnsupported {
                        device: device.clone(),
                    }
                }
                _ => link_error(
                    device,
                    NetlinkError::Request {
                        action: format!("create wireguard link {temp}"),
                        netns: socket_netns.clone(),
                        source: Box::new(e),
                    },
                ),
            })?;
        let update = interface_update(private_key, listen_port);
        let configured = self
            .in_netns(
                device,
                socket_netns,
                temp.as_str().to_owned(),
                "set private key and listen port",
                move |n| update.apply(n, Backend::Kernel),
            )
            .await;
        let placed = match configured {
            Ok(()) => self
                .links
                .move_link(socket_netns, &temp, &device.netns, Some(&device.name))
                .await
                .map_err(|e| link_error(device, e)),
            Err(e) => Err(e),
        };
        if let Err(e) = placed {
            let _ = self.links.delete_link(socket_netns, &temp).await;
            return Err(e);
        }
        Ok(())
    }

    async fn configure(
        &self,
        device: &WgDeviceId,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError> {
        self.require_link(device).await?;
        let update = interface_update(private_key, listen_port);
        self.in_netns(
            device,
            &device.netns,
            device.name.as_str().to_owned(),
            "set private key and listen port",
            move |n| update.apply(n, Backend::Kernel),
        )
        .await
    }

    async fn delete(&self, device: &WgDeviceId) -> Result<(), WireGuardError> {
        self.links
            .delete_link(&device.netns, &device.name)
            .await
            .map_err(|e| link_error(device, e))
    }

    async fn update_peers(
        &self,
        device: &WgDeviceId,
        changes: &[PeerChange],
    ) -> Result<(), WireGuardError> {
        self.require_link(device).await?;
        let update = peer_update(changes);
        let action = format!("apply {} peer change(s)", changes.len());
        self.in_netns(
            device,
            &device.netns,
            device.name.as_str().to_owned(),
            &action,
            move |n| update.apply(n, Backend::Kernel),
        )
        .await
    }

    fn name_device(&self, device: &WgDeviceId, socket_name: &InterfaceName) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.clone(), socket_name.clone());
    }

    async fn set_peer_keepalive(
        &self,
        device: &WgDeviceId,
        peer: &Peer,
        seconds: u16,
        recreate: bool,
    ) -> Result<(), WireGuardError> {
        self.require_link(device).await?;
        let update = keepalive_update(peer, seconds, recreate);
        self.in_netns(
            device,
            &device.netns,
            device.name.as_str().to_owned(),
            "set the gateway peer's keepalive",
            move |n| update.apply(n, Backend::Kernel),
        )
        .await
    }
}
