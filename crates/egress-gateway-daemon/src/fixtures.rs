//! Test fixtures: objects as the operator and the CNI manager write them, built from JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use egress_dataplane::{InterfaceName, NetnsRef, PrivateKey};
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

use crate::desired::HostConfig;
use crate::inventory::{Change, Delta, Inventory};
use crate::node::NodeIdentity;

pub const NS: &str = "default";
pub const KEY_NS: &str = "kube-egress-gateway-system";
pub const NODE: &str = "gw-vmss000000";

pub fn host() -> HostConfig {
    HostConfig {
        host_netns: NetnsRef::Current,
        host_interface: "eth0".parse::<InterfaceName>().unwrap(),
        gateway_netns: "ns-static-egress-gateway".parse().unwrap(),
        tunnel_mtu: 1420,
        secret_namespace: KEY_NS.into(),
    }
}

pub fn node() -> NodeIdentity {
    NodeIdentity::computer(NODE)
}

/// One gateway's objects: SGC (provisioned), VM config (listing `NODE`), key Secret.
pub struct Gw {
    pub name: String,
    pub uid: String,
    pub port: i32,
    pub key: PrivateKey,
    pub secondary: String,
    pub primary: String,
    pub ilb: String,
}

impl Gw {
    pub fn new(name: &str, port: i32, secondary: &str) -> Self {
        Self {
            name: name.into(),
            uid: format!("uid-{name}"),
            port,
            key: PrivateKey::generate(),
            secondary: secondary.into(),
            primary: "10.0.0.4".into(),
            ilb: "10.0.0.100".into(),
        }
    }

    pub fn sgc(&self) -> StaticGatewayConfiguration {
        serde_json::from_value(json!({
            "apiVersion": egress_api::constants::API_VERSION,
            "kind": "StaticGatewayConfiguration",
            "metadata": {"name": self.name, "namespace": NS, "uid": self.uid},
            "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": true},
            "status": {
                "egressIpPrefix": "203.0.113.0/31",
                "gatewayServerProfile": {
                    "ip": self.ilb, "port": self.port,
                    "publicKey": self.key.public_key().to_base64(),
                    "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret",
                        "name": format!("sgw-{}", self.uid), "namespace": KEY_NS}
                }
            }
        }))
        .unwrap()
    }

    pub fn vm_config(&self, node: &str) -> GatewayVMConfiguration {
        serde_json::from_value(json!({
            "apiVersion": egress_api::constants::API_VERSION,
            "kind": "GatewayVMConfiguration",
            "metadata": {"name": self.name, "namespace": NS, "uid": format!("vm-{}", self.uid)},
            "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": true},
            "status": {"egressIpPrefix": "203.0.113.0/31", "gatewayVMProfiles": [
                {"nodeName": node, "primaryIP": self.primary, "secondaryIP": self.secondary},
                {"nodeName": "some-other-node", "primaryIP": "10.0.0.5", "secondaryIP": "10.0.0.99"}
            ]}
        }))
        .unwrap()
    }

    pub fn secret_with(&self, private_key_text: &str) -> Secret {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("sgw-{}", self.uid), "namespace": KEY_NS},
            "stringData": {"PrivateKey": private_key_text,
                           "PublicKey": self.key.public_key().to_base64()}
        }))
        .unwrap()
    }

    pub fn secret(&self) -> Secret {
        self.secret_with(&self.key.expose_base64())
    }
}

pub fn pod_endpoint(name: &str, sgc: &str, ip: &str, key: &str) -> PodEndpoint {
    serde_json::from_value(json!({
        "apiVersion": egress_api::constants::API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": name, "namespace": NS, "uid": format!("pe-{name}")},
        "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": key}
    }))
    .unwrap()
}

pub fn random_pub() -> String {
    PrivateKey::generate().public_key().to_base64()
}

/// An inventory with these gateways (all listing `NODE`) and PodEndpoints, fully listed.
pub fn inventory(gateways: &[&Gw], pes: Vec<PodEndpoint>) -> Inventory {
    let mut inv = Inventory::default();
    for change in changes(gateways, pes) {
        inv.apply(change);
    }
    inv
}

/// The `Relisted` changes a start-up delivers.
pub fn changes(gateways: &[&Gw], pes: Vec<PodEndpoint>) -> Vec<Change> {
    vec![
        Change::Sgc(Box::new(Delta::Relisted(
            gateways.iter().map(|g| g.sgc()).collect(),
        ))),
        Change::VmConfig(Delta::Relisted(
            gateways.iter().map(|g| g.vm_config(NODE)).collect(),
        )),
        Change::Secret(Delta::Relisted(
            gateways.iter().map(|g| g.secret()).collect(),
        )),
        Change::PodEndpoint(Delta::Relisted(pes)),
    ]
}
