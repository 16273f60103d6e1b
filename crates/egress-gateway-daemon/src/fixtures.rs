//! Test fixtures: objects as the operator and the CNI manager write them, built from JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use egress_dataplane::{InterfaceName, NetnsRef, PrivateKey};
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

use crate::desired::HostConfig;
use crate::inventory::{Change, Delta, Inventory};
use crate::node::NodeIdentity;
use crate::pods::PodFacts;

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
        ipv6: true,
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
    /// Dual-stack: `IPv6` in `ipFamilies` and this node's secondary IPv6 (`Some("")` for an
    /// SGC with IPv6 whose node has none yet).
    pub secondary_ipv6: Option<String>,
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
            secondary_ipv6: None,
        }
    }

    /// The same gateway dual-stack, with this node's secondary IPv6 (`""`: none yet).
    pub fn dual(mut self, secondary_ipv6: &str) -> Self {
        self.secondary_ipv6 = Some(secondary_ipv6.into());
        self
    }

    pub fn sgc(&self) -> StaticGatewayConfiguration {
        serde_json::from_value(json!({
            "apiVersion": egress_api::constants::API_VERSION,
            "kind": "StaticGatewayConfiguration",
            "metadata": {"name": self.name, "namespace": NS, "uid": self.uid},
            "spec": self.target(),
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
            "spec": self.target(),
            "status": {"egressIpPrefix": "203.0.113.0/31", "gatewayVMProfiles": [
                self.profile(node),
                {"nodeName": "some-other-node", "primaryIP": "10.0.0.5", "secondaryIP": "10.0.0.99"}
            ]}
        }))
        .unwrap()
    }

    fn target(&self) -> serde_json::Value {
        let mut target = json!({"gatewayNodepoolName": "gwpool", "provisionPublicIps": true});
        if self.secondary_ipv6.is_some() {
            target["ipFamilies"] = json!(["IPv4", "IPv6"]);
        }
        target
    }

    fn profile(&self, node: &str) -> serde_json::Value {
        let mut profile =
            json!({"nodeName": node, "primaryIP": self.primary, "secondaryIP": self.secondary});
        if let Some(ip) = self.secondary_ipv6.as_deref().filter(|ip| !ip.is_empty()) {
            profile["secondaryIPv6"] = json!(ip);
        }
        profile
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

/// Node of the pods in the fixtures (their PodEndpoints carry it as the node label).
pub const POD_NODE: &str = "aks-nodepool1-vmss000000";

/// A PodEndpoint as the CNI manager of `POD_NODE` writes it for pod `name`.
pub fn pod_endpoint(name: &str, sgc: &str, ip: &str, key: &str) -> PodEndpoint {
    serde_json::from_value(json!({
        "apiVersion": egress_api::constants::API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": name, "namespace": NS, "uid": format!("pe-{name}"),
            "labels": {egress_api::constants::POD_ENDPOINT_NODE_LABEL: POD_NODE},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name,
                "uid": pod_uid(name), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": key}
    }))
    .unwrap()
}

/// `pe` as the CNI manager writes it for a dual-stack pod.
pub fn with_ipv6(mut pe: PodEndpoint, ipv6: &str) -> PodEndpoint {
    pe.spec.pod_ipv6_address = Some(ipv6.into());
    pe
}

/// The UID of fixture pod `name`.
pub fn pod_uid(name: &str) -> String {
    format!("pod-uid-{name}")
}

/// A running pod `name` on `POD_NODE`, annotated with `sgc`, with `ips` (none: ADD in
/// progress), created at `2024-01-01T00:00:<created>Z`.
pub fn pod(name: &str, sgc: &str, ips: &[&str], created: u8) -> PodFacts {
    PodFacts {
        key: crate::translate::ObjectKey::new(NS, name),
        uid: pod_uid(name),
        node_name: Some(POD_NODE.into()),
        annotation: Some(sgc.into()).filter(|s: &String| !s.is_empty()),
        labels: Default::default(),
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        created: Some(format!("2024-01-01T00:00:{created:02}Z").parse().unwrap()),
        terminating: false,
        finished: false,
    }
}

/// The pod a fixture PodEndpoint speaks for: same name, its SGC, its IP.
pub fn pod_of(pe: &PodEndpoint) -> PodFacts {
    let ip = pe.spec.pod_ip_address.as_deref().unwrap_or_default();
    let ip = ip.split('/').next().unwrap_or_default();
    let ips: Vec<&str> = ip
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|_| ip)
        .into_iter()
        .collect();
    pod(
        &pe.metadata.name.clone().unwrap(),
        pe.spec
            .static_gateway_configuration
            .as_deref()
            .unwrap_or_default(),
        &ips,
        0,
    )
}

/// A pod and its PodEndpoint arriving, as the watches deliver them.
pub fn arrive(pe: PodEndpoint) -> [Change; 2] {
    [
        Change::Pod(Delta::Apply(pod_of(&pe))),
        Change::PodEndpoint(Delta::Apply(pe)),
    ]
}

pub fn random_pub() -> String {
    PrivateKey::generate().public_key().to_base64()
}

/// An inventory with these gateways (all listing `NODE`), PodEndpoints and their pods, fully
/// listed.
pub fn inventory(gateways: &[&Gw], pes: Vec<PodEndpoint>) -> Inventory {
    let pods = pes.iter().map(pod_of).collect();
    inventory_with(gateways, pes, pods)
}

/// An inventory with these gateways, PodEndpoints and pods.
pub fn inventory_with(gateways: &[&Gw], pes: Vec<PodEndpoint>, pods: Vec<PodFacts>) -> Inventory {
    let mut inv = Inventory::default();
    for change in changes_with(gateways, pes, pods) {
        inv.apply(change);
    }
    inv
}

/// The `Relisted` changes a start-up delivers (with the PodEndpoints' own pods).
pub fn changes(gateways: &[&Gw], pes: Vec<PodEndpoint>) -> Vec<Change> {
    let pods = pes.iter().map(pod_of).collect();
    changes_with(gateways, pes, pods)
}

/// The `Relisted` changes a start-up delivers.
pub fn changes_with(gateways: &[&Gw], pes: Vec<PodEndpoint>, pods: Vec<PodFacts>) -> Vec<Change> {
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
        Change::Pod(Delta::Relisted(pods)),
        Change::PodEndpoint(Delta::Relisted(pes)),
    ]
}
