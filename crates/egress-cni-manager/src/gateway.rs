//! Pure translation of a StaticGatewayConfiguration into what the plugin needs (endpoint, key,
//! route mode, CIDRs), with errors that name the SGC and exactly which status fields are
//! missing or malformed. An SGC that is not provisioned is either still provisioning or, when
//! the operator reports a failing condition, cannot be provisioned as it stands: the error
//! then carries the operator's reason and message (see [`failing_condition`]).

use std::net::{IpAddr, SocketAddr};

use egress_api::conditions::READY;
use egress_api::{DefaultRoute, StaticGatewayConfiguration};
use egress_cni_proto::{AddReply, WireKey};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Resource, ResourceExt};

/// The reason the operator gives to work in progress (never a failure).
const PROVISIONING: &str = "Provisioning";

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
    /// The operator reports that the SGC cannot be provisioned as it stands.
    #[error(
        "StaticGatewayConfiguration {sgc} cannot be provisioned: {reason}: {message} (condition {condition}; the pod starts once this is fixed)"
    )]
    Failed {
        /// `namespace/name`.
        sgc: String,
        /// The failing condition's type.
        condition: String,
        /// Its reason.
        reason: String,
        /// Its message.
        message: String,
    },
    /// The SGC is being deleted: it takes no new pods.
    #[error(
        "StaticGatewayConfiguration {sgc} is being deleted: it takes no new pods (point the pod's annotation at another gateway)"
    )]
    Deleting {
        /// `namespace/name`.
        sgc: String,
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

/// Status fields that must be set before pods can use the gateway; with `ipv6` (a pod that
/// has an IPv6 address), the IPv6 prefix of a dual-stack gateway too.
pub fn missing_fields(sgc: &StaticGatewayConfiguration, ipv6: bool) -> Vec<&'static str> {
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
    // A dual-stack gateway takes a pod with IPv6 once both families are provisioned: routing
    // its IPv6 into a gateway that cannot SNAT it yet would lose IPv6 egress, and starting it
    // IPv4-only would leave its IPv6 on the node's address until it restarts. A pod without
    // IPv6 has nothing to wait for.
    if ipv6 && sgc.spec.target.ipv6() && empty(&status.egress_ipv6_prefix) {
        missing.push("status.egressIpv6Prefix");
    }
    missing
}

/// The condition that says why the operator cannot provision `sgc`, if one does: `Ready`
/// first (the operator's summary, which also carries spec and key problems), then every other
/// `*Ready` condition (the pool's may be newer than `Ready`). A condition is failing when it is
/// `False` with a reason other than `Provisioning` and describes the current generation (an
/// older one may be about a spec since fixed: still provisioning until the operator looks).
pub fn failing_condition(sgc: &StaticGatewayConfiguration) -> Option<&Condition> {
    let generation = sgc.meta().generation;
    let conditions = sgc.status.as_ref().map(|s| s.conditions.as_slice())?;
    let failing = |c: &&Condition| {
        c.type_.ends_with(READY)
            && c.status == "False"
            && c.reason != PROVISIONING
            && c.observed_generation.is_none_or(|g| Some(g) >= generation)
    };
    let ready = conditions.iter().filter(|c| c.type_ == READY);
    let others = conditions.iter().filter(|c| c.type_ != READY);
    ready.chain(others).find(failing)
}

/// Why a pod (`ipv6`: one with an IPv6 address) cannot use `sgc` yet, if it cannot: being
/// deleted, cannot be provisioned (the operator's reason), or still provisioning (the missing
/// status fields).
pub fn unusable(sgc: &StaticGatewayConfiguration, ipv6: bool) -> Option<GatewayError> {
    let id = format!("{}/{}", sgc.namespace().unwrap_or_default(), sgc.name_any());
    if sgc.meta().deletion_timestamp.is_some() {
        return Some(GatewayError::Deleting { sgc: id });
    }
    let missing = missing_fields(sgc, ipv6);
    if missing.is_empty() {
        return None;
    }
    Some(match failing_condition(sgc) {
        Some(c) => GatewayError::Failed {
            sgc: id,
            condition: c.type_.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => GatewayError::NotReady { sgc: id, missing },
    })
}

/// The plugin's view of a provisioned SGC, for a pod without IPv6 (see [`to_reply_for`]).
pub fn to_reply(sgc: &StaticGatewayConfiguration) -> Result<AddReply, GatewayError> {
    to_reply_for(sgc, false)
}

/// Why a pod with IPv6 cannot use `sgc` although one without could: its IPv6 is not
/// provisioned yet, or the operator reports why it cannot be.
pub fn ipv6_unusable(sgc: &StaticGatewayConfiguration) -> Option<GatewayError> {
    unusable(sgc, false)
        .is_none()
        .then(|| unusable(sgc, true))?
}

/// The plugin's view of a provisioned SGC for a pod with (`ipv6`) or without an IPv6 address.
pub fn to_reply_for(
    sgc: &StaticGatewayConfiguration,
    ipv6: bool,
) -> Result<AddReply, GatewayError> {
    let id = format!("{}/{}", sgc.namespace().unwrap_or_default(), sgc.name_any());
    if let Some(e) = unusable(sgc, ipv6) {
        return Err(e);
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
        // IPv6 egress needs both a dual-stack gateway and a pod with an IPv6 address.
        ipv6: ipv6 && sgc.spec.target.ipv6(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::{Value, json};

    const KEY: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdE=";

    fn sgc(deleting: bool, status: Value) -> StaticGatewayConfiguration {
        let mut meta = json!({"name": "gw", "namespace": "ns", "generation": 2});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({
            "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
            "kind": "StaticGatewayConfiguration", "metadata": meta,
            "spec": {"gatewayNodepoolName": "gwpool"}, "status": status,
        }))
        .unwrap()
    }

    fn cond(type_: &str, status: &str, reason: &str, generation: i64) -> Value {
        json!({"type": type_, "status": status, "reason": reason,
            "message": format!("m of {reason}"), "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    fn unprovisioned(conditions: &[Value]) -> StaticGatewayConfiguration {
        sgc(
            false,
            json!({"gatewayServerProfile": {"publicKey": KEY,
                "privateKeySecretRef": {"name": "sgw-u"}}, "conditions": conditions}),
        )
    }

    #[test]
    fn a_pool_that_does_not_exist_is_a_failure_with_the_operators_reason() {
        // The pool's condition arrived before the SGC controller summed it up in Ready.
        let s = unprovisioned(&[
            cond("KeyReady", "True", "KeyProvisioned", 2),
            cond("Ready", "False", "Provisioning", 2),
            cond("LoadBalancerReady", "False", "GatewayPoolNotFound", 2),
        ]);
        let e = to_reply(&s).unwrap_err();
        assert!(
            matches!(&e, GatewayError::Failed { condition, reason, .. } if condition == "LoadBalancerReady" && reason == "GatewayPoolNotFound"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "StaticGatewayConfiguration ns/gw cannot be provisioned: GatewayPoolNotFound: m of GatewayPoolNotFound (condition LoadBalancerReady; the pod starts once this is fixed)"
        );
        // Ready names the failure itself once the SGC controller has seen it; InUse never counts.
        let s = unprovisioned(&[
            cond("InUse", "False", "NotInUse", 2),
            cond("PrefixReady", "False", "PrefixTooSmall", 2),
            cond("Ready", "False", "InvalidSpec", 2),
        ]);
        assert_eq!(failing_condition(&s).unwrap().reason, "InvalidSpec");
    }

    #[test]
    fn provisioning_and_stale_failures_are_not_ready_not_failed() {
        let s = unprovisioned(&[
            cond("Ready", "False", "Provisioning", 2),
            cond("InUse", "False", "NotInUse", 2),
            // About generation 1: the spec changed since, the operator has not looked yet.
            cond("LoadBalancerReady", "False", "GatewayPoolNotFound", 1),
        ]);
        let e = to_reply(&s).unwrap_err();
        assert!(matches!(e, GatewayError::NotReady { .. }), "{e:?}");
        assert!(e.to_string().contains("not set yet"), "{e}");
        assert!(matches!(
            to_reply(&unprovisioned(&[])),
            Err(GatewayError::NotReady { .. })
        ));
    }

    #[test]
    fn a_provisioned_gateway_is_served_and_a_deleted_one_is_not() {
        let status = json!({"egressIpPrefix": "203.0.113.0/31",
            "gatewayServerProfile": {"ip": "10.0.0.6", "port": 6000, "publicKey": KEY,
                "privateKeySecretRef": {"name": "sgw-u"}},
            "conditions": [cond("Ready", "False", "ImmutableFieldChanged", 2)]});
        // Provisioned: served even while Ready reports a part of the spec it does not apply.
        let reply = to_reply(&sgc(false, status.clone())).unwrap();
        assert_eq!(reply.endpoint.to_string(), "10.0.0.6:6000");
        let e = to_reply(&sgc(true, status)).unwrap_err();
        assert_eq!(
            e,
            GatewayError::Deleting {
                sgc: "ns/gw".into()
            }
        );
        assert!(e.to_string().contains("is being deleted"), "{e}");
    }

    #[test]
    fn a_dual_stack_gateway_makes_ipv6_pods_wait_for_its_ipv6_prefix_and_says_so() {
        let profile = json!({"ip": "10.0.0.6", "port": 6000, "publicKey": KEY,
            "privateKeySecretRef": {"name": "sgw-u"}});
        let mut s = sgc(
            false,
            json!({"egressIpPrefix": "203.0.113.0/31", "gatewayServerProfile": profile}),
        );
        assert!(
            !to_reply_for(&s, true).unwrap().ipv6,
            "IPv4-only by default"
        );
        s.spec.target.ip_families = Some(vec![
            egress_api::target::IpFamily::IPv4,
            egress_api::target::IpFamily::IPv6,
        ]);
        // A pod without IPv6 has nothing to wait for.
        assert!(to_reply(&s).is_ok());
        assert_eq!(ipv6_unusable(&s), to_reply_for(&s, true).err());
        let e = to_reply_for(&s, true).unwrap_err();
        assert_eq!(
            e,
            GatewayError::NotReady {
                sgc: "ns/gw".into(),
                missing: vec!["status.egressIpv6Prefix"]
            }
        );
        // An IPv6 failure the operator reports is the pod's reason to wait.
        s.status.as_mut().unwrap().conditions =
            vec![serde_json::from_value(cond("IPv6Ready", "False", "InvalidPrefixId", 2)).unwrap()];
        assert!(
            matches!(to_reply_for(&s, true), Err(GatewayError::Failed { reason, .. }) if reason == "InvalidPrefixId")
        );
        s.status.as_mut().unwrap().conditions.clear();
        s.status.as_mut().unwrap().egress_ipv6_prefix = Some("2001:db8:e::/127".into());
        assert!(to_reply_for(&s, true).unwrap().ipv6);
        assert_eq!(ipv6_unusable(&s), None);
    }
}
