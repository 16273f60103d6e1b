//! Pure translation of a StaticGatewayConfiguration into what the plugin needs (endpoint, key,
//! route mode, CIDRs), with errors that name the SGC and exactly which status fields are
//! missing or malformed.

use std::net::{IpAddr, SocketAddr};

use egress_api::{DefaultRoute, StaticGatewayConfiguration};
use egress_cni_proto::{AddReply, WireKey};
use kube::ResourceExt;

/// Why an SGC cannot be used yet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    /// The operator has not provisioned it yet.
    #[error("StaticGatewayConfiguration {sgc} is not ready: {} not set yet (the operator has not finished provisioning it)", missing.join(", "))]
    NotReady {
        /// `namespace/name`.
        sgc: String,
        /// Status fields still empty.
        missing: Vec<&'static str>,
    },
    /// The status holds a value the plugin cannot use.
    #[error("StaticGatewayConfiguration {sgc} is unusable: {field} {value:?} {problem}")]
    Invalid {
        /// `namespace/name`.
        sgc: String,
        /// The field.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Status fields that must be set before pods can use the gateway.
pub fn missing_fields(sgc: &StaticGatewayConfiguration) -> Vec<&'static str> {
    let status = sgc.status.clone().unwrap_or_default();
    let p = status.gateway_server_profile.unwrap_or_default();
    let empty = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
    let mut missing = Vec::new();
    if empty(&status.egress_ip_prefix) {
        missing.push("status.egressIpPrefix");
    }
    if empty(&p.ip) {
        missing.push("status.gatewayServerProfile.ip");
    }
    if p.port.is_none_or(|port| port == 0) {
        missing.push("status.gatewayServerProfile.port");
    }
    if empty(&p.public_key) {
        missing.push("status.gatewayServerProfile.publicKey");
    }
    if p.private_key_secret_ref.is_none() {
        missing.push("status.gatewayServerProfile.privateKeySecretRef");
    }
    missing
}

/// The plugin's view of a provisioned SGC.
pub fn to_reply(sgc: &StaticGatewayConfiguration) -> Result<AddReply, GatewayError> {
    let id = format!("{}/{}", sgc.namespace().unwrap_or_default(), sgc.name_any());
    let missing = missing_fields(sgc);
    if !missing.is_empty() {
        return Err(GatewayError::NotReady { sgc: id, missing });
    }
    let invalid = |field: &str, value: String, problem| GatewayError::Invalid {
        sgc: id.clone(),
        field: field.to_string(),
        value,
        problem,
    };
    let profile = sgc
        .status
        .as_ref()
        .and_then(|s| s.gateway_server_profile.clone())
        .unwrap_or_default();
    let ip_text = profile.ip.unwrap_or_default();
    let ip: IpAddr = ip_text.parse().map_err(|_| {
        invalid(
            "status.gatewayServerProfile.ip",
            ip_text.clone(),
            "is not an IP address",
        )
    })?;
    let port_raw = profile.port.unwrap_or_default();
    let port = u16::try_from(port_raw).map_err(|_| {
        invalid(
            "status.gatewayServerProfile.port",
            port_raw.to_string(),
            "is not a UDP port",
        )
    })?;
    let key_text = profile.public_key.unwrap_or_default();
    let gateway_public_key = WireKey::parse(&key_text).map_err(|_| {
        invalid(
            "status.gatewayServerProfile.publicKey",
            key_text.clone(),
            "is not a base64 WireGuard key",
        )
    })?;
    let mut exclude_cidrs = Vec::new();
    for (i, c) in sgc.spec.exclude_cidrs.iter().flatten().enumerate() {
        let net = c.parse().ok_or_else(|| {
            invalid(
                &format!("spec.excludeCidrs[{i}]"),
                c.0.clone(),
                "is not a CIDR",
            )
        })?;
        exclude_cidrs.push(net);
    }
    Ok(AddReply {
        gateway: sgc.name_any(),
        endpoint: SocketAddr::new(ip, port),
        gateway_public_key,
        default_route: match sgc.spec.default_route {
            DefaultRoute::StaticEgressGateway => {
                egress_cni_proto::DefaultRoute::StaticEgressGateway
            }
            DefaultRoute::AzureNetworking => egress_cni_proto::DefaultRoute::AzureNetworking,
        },
        exclude_cidrs,
    })
}
