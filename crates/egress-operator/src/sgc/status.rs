//! Pure status of a StaticGatewayConfiguration as its own controller owns it: the endpoint
//! (copied from the GatewayLBConfiguration, as the original), the public key and Secret
//! reference, `observedGeneration`, and the `KeyReady`, `Ready` and `ExcludeCidrsIgnored`
//! conditions. `Ready` sums up
//! the pool controller's conditions (`LoadBalancerReady`, `PrefixReady`, `GatewayVMsReady`).

use egress_api::conditions::{
    EXCLUDE_CIDRS_IGNORED, KEY_READY, LOAD_BALANCER_READY, PREFIX_READY, READY, condition,
    set_condition,
};
use egress_api::constants::API_VERSION;
use egress_api::{
    GatewayLBConfigurationStatus, GatewayServerProfile, StaticGatewayConfiguration,
    StaticGatewayConfigurationStatus,
};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use serde_json::json;

use crate::pool::status::GATEWAY_VMS_READY;

/// The pool conditions `Ready` needs, in the order their failures are reported.
const POOL_CONDITIONS: [&str; 3] = [LOAD_BALANCER_READY, PREFIX_READY, GATEWAY_VMS_READY];

/// What the key step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The public key and the Secret holding the pair.
    Ready {
        /// Base64 public key.
        public_key: String,
        /// Secret name.
        secret: String,
        /// Secret namespace.
        namespace: String,
    },
    /// The stored key cannot be used (never replaced silently).
    Broken(String),
}

/// Inputs of the status.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// The SGC as read.
    pub sgc: &'a StaticGatewayConfiguration,
    /// The spec's validation error, if any.
    pub invalid: Option<(&'static str, String)>,
    /// A part of a valid spec the operator does not apply (provisioning goes on): the reason
    /// and message `Ready` shows.
    pub unsatisfied: Option<(&'static str, String)>,
    /// The key, unless validation failed first.
    pub key: Option<KeyState>,
    /// The LB configuration's status.
    pub lb_status: Option<&'a GatewayLBConfigurationStatus>,
}

fn cond<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// The desired status: the current one with this controller's fields replaced.
pub fn desired(obs: &Observed<'_>, now: Time) -> StaticGatewayConfigurationStatus {
    let sgc = obs.sgc;
    let generation = sgc.metadata.generation;
    let mut status = sgc.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let lb = obs.lb_status;
    status.egress_ip_prefix = lb
        .and_then(|l| l.egress_ip_prefix.clone())
        .filter(|s| !s.is_empty());
    status.gateway_server_profile =
        Some(server_profile(obs)).filter(|p| p != &GatewayServerProfile::default());

    let c = |t, ok, r: &str, m: String| condition(t, ok, r, m, generation, now.clone());
    match &obs.key {
        Some(KeyState::Ready { secret, .. }) => {
            set_condition(
                &mut status.conditions,
                c(
                    KEY_READY,
                    true,
                    "KeyProvisioned",
                    format!("gateway key pair in Secret {secret}"),
                ),
            );
        }
        Some(KeyState::Broken(msg)) => {
            set_condition(
                &mut status.conditions,
                c(KEY_READY, false, "InvalidKey", msg.clone()),
            );
        }
        None => {}
    }
    let ignored = egress_api::semantics::ignored_exclude_cidrs(&sgc.spec);
    if ignored.is_empty() {
        status
            .conditions
            .retain(|x| x.type_ != EXCLUDE_CIDRS_IGNORED);
    } else {
        let message = format!(
            "{} {}",
            ignored.join(", "),
            egress_api::semantics::IPV6_EXCLUDE_IGNORED
        );
        set_condition(
            &mut status.conditions,
            c(EXCLUDE_CIDRS_IGNORED, true, "IPv6NotEnabled", message),
        );
    }
    let (ok, reason, message) = ready(obs, &status);
    set_condition(&mut status.conditions, c(READY, ok, &reason, message));
    status
}

/// The endpoint (copied from the LB configuration) and the key pair's public half and Secret.
fn server_profile(obs: &Observed<'_>) -> GatewayServerProfile {
    let lb = obs.lb_status;
    let mut profile = GatewayServerProfile {
        ip: lb.and_then(|l| l.frontend_ip.clone()),
        port: lb.and_then(|l| l.server_port),
        ..Default::default()
    };
    if let Some(KeyState::Ready {
        public_key,
        secret,
        namespace,
    }) = &obs.key
    {
        profile.public_key = Some(public_key.clone());
        profile.private_key_secret_ref = Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            name: Some(secret.clone()),
            namespace: Some(namespace.clone()),
            ..Default::default()
        });
    }
    profile
}

/// `Ready` (status, reason, message): the first failure among the spec, the key and the pool
/// conditions, else provisioned once everything is known.
fn ready(obs: &Observed<'_>, status: &StaticGatewayConfigurationStatus) -> (bool, String, String) {
    if let Some((_, msg)) = &obs.invalid {
        (false, "InvalidSpec".into(), msg.clone())
    } else if let Some(KeyState::Broken(msg)) = &obs.key {
        (false, "InvalidKey".into(), msg.clone())
    } else if let Some((reason, msg)) = &obs.unsatisfied {
        (false, (*reason).to_string(), msg.clone())
    } else if let Some(bad) = POOL_CONDITIONS
        .iter()
        .filter_map(|t| cond(&status.conditions, t))
        .find(|x| x.status != "True")
    {
        (false, bad.reason.clone(), bad.message.clone())
    } else if POOL_CONDITIONS
        .iter()
        .all(|t| cond(&status.conditions, t).is_some())
        && status.is_provisioned()
    {
        let message = format!(
            "egress through {} from {}",
            profile_endpoint(status),
            status.egress_ip_prefix.clone().unwrap_or_default()
        );
        (true, "Provisioned".into(), message)
    } else {
        let message = "waiting for the gateway pool to be provisioned".to_string();
        (false, "Provisioning".into(), message)
    }
}

fn profile_endpoint(s: &StaticGatewayConfigurationStatus) -> String {
    let p = s.gateway_server_profile.clone().unwrap_or_default();
    format!("{}:{}", p.ip.unwrap_or_default(), p.port.unwrap_or(0))
}

/// The server-side apply body with only the fields this controller owns.
pub fn apply_body(
    sgc: &StaticGatewayConfiguration,
    s: &StaticGatewayConfigurationStatus,
) -> serde_json::Value {
    let ours: Vec<&Condition> = s
        .conditions
        .iter()
        .filter(|c| [READY, KEY_READY, EXCLUDE_CIDRS_IGNORED].contains(&c.type_.as_str()))
        .collect();
    let mut status = json!({"conditions": ours});
    if let Some(g) = s.observed_generation {
        status["observedGeneration"] = json!(g);
    }
    if let Some(p) = &s.egress_ip_prefix {
        status["egressIpPrefix"] = json!(p);
    }
    if let Some(p) = &s.gateway_server_profile {
        status["gatewayServerProfile"] = json!(p);
    }
    json!({"apiVersion": API_VERSION, "kind": "StaticGatewayConfiguration",
        "metadata": {"name": sgc.name_any()}, "status": status})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn sgc(status: &str) -> StaticGatewayConfiguration {
        serde_saphyr::from_str(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: StaticGatewayConfiguration\nmetadata: {{name: gw, namespace: ns, uid: u1, generation: 3}}\nspec: {{gatewayNodepoolName: gwpool}}\nstatus: {status}\n"
        ))
        .unwrap()
    }

    fn now() -> Time {
        Time(Timestamp::from_second(1000).unwrap())
    }

    fn key() -> Option<KeyState> {
        Some(KeyState::Ready {
            public_key: "PUB".into(),
            secret: "sgw-u1".into(),
            namespace: "kube-system".into(),
        })
    }

    fn ready(s: &StaticGatewayConfigurationStatus) -> &Condition {
        cond(&s.conditions, READY).unwrap()
    }

    const POOL_OK: &str = "{conditions: [{type: LoadBalancerReady, status: 'True', reason: R, message: m, lastTransitionTime: '2024-01-01T00:00:00Z'}, {type: PrefixReady, status: 'True', reason: R, message: m, lastTransitionTime: '2024-01-01T00:00:00Z'}, {type: GatewayVMsReady, status: 'True', reason: R, message: m, lastTransitionTime: '2024-01-01T00:00:00Z'}]}";

    #[test]
    fn ready_once_the_pool_conditions_and_the_endpoint_are_there() {
        let s = sgc(POOL_OK);
        let lb = GatewayLBConfigurationStatus {
            frontend_ip: Some("10.0.0.9".into()),
            server_port: Some(6000),
            egress_ip_prefix: Some("203.0.113.0/31".into()),
        };
        let out = desired(
            &Observed {
                sgc: &s,
                invalid: None,
                unsatisfied: None,
                key: key(),
                lb_status: Some(&lb),
            },
            now(),
        );
        assert_eq!(ready(&out).status, "True", "{:?}", ready(&out));
        assert_eq!(
            ready(&out).message,
            "egress through 10.0.0.9:6000 from 203.0.113.0/31"
        );
        assert_eq!(out.observed_generation, Some(3));
        assert!(out.is_provisioned());
        let body = apply_body(&s, &out);
        let conds = body["status"]["conditions"].as_array().unwrap();
        // Only this controller's conditions are applied; the pool's stay with the pool.
        assert_eq!(conds.len(), 2);
        assert_eq!(
            body["status"]["gatewayServerProfile"]["privateKeySecretRef"]["name"],
            "sgw-u1"
        );
        assert_eq!(body["status"]["gatewayServerProfile"]["publicKey"], "PUB");
    }

    #[test]
    fn ipv6_exclusions_are_reported_and_the_report_goes_with_them() {
        let mut s = sgc(POOL_OK);
        s.spec.exclude_cidrs = Some(vec![
            egress_api::CidrText("10.0.0.0/8".into()),
            egress_api::CidrText("fd00::/8".into()),
        ]);
        fn obs(s: &StaticGatewayConfiguration) -> Observed<'_> {
            Observed {
                sgc: s,
                invalid: None,
                unsatisfied: None,
                key: key(),
                lb_status: None,
            }
        }
        let out = desired(&obs(&s), now());
        let c = cond(&out.conditions, EXCLUDE_CIDRS_IGNORED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "IPv6NotEnabled")
        );
        assert!(
            c.message.starts_with("fd00::/8 is an IPv6 CIDR"),
            "{}",
            c.message
        );
        let body = apply_body(&s, &out);
        assert!(
            body["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == EXCLUDE_CIDRS_IGNORED)
        );
        // The entry removed: the condition is gone from what this controller applies.
        s.status = Some(out);
        s.spec.exclude_cidrs = Some(vec![egress_api::CidrText("10.0.0.0/8".into())]);
        let out = desired(&obs(&s), now());
        assert!(cond(&out.conditions, EXCLUDE_CIDRS_IGNORED).is_none());
    }

    #[test]
    fn a_failing_pool_condition_is_the_ready_reason() {
        let s = sgc(
            "{conditions: [{type: LoadBalancerReady, status: 'False', reason: PortsExhausted, message: all used, lastTransitionTime: '2024-01-01T00:00:00Z'}]}",
        );
        let out = desired(
            &Observed {
                sgc: &s,
                invalid: None,
                unsatisfied: None,
                key: key(),
                lb_status: None,
            },
            now(),
        );
        assert_eq!(ready(&out).status, "False");
        assert_eq!(ready(&out).reason, "PortsExhausted");
        assert_eq!(ready(&out).message, "all used");
    }

    #[test]
    fn missing_pool_conditions_mean_provisioning_and_invalid_specs_say_so() {
        let s = sgc("{}");
        let out = desired(
            &Observed {
                sgc: &s,
                invalid: None,
                unsatisfied: None,
                key: key(),
                lb_status: None,
            },
            now(),
        );
        assert_eq!(ready(&out).reason, "Provisioning");
        assert_eq!(cond(&out.conditions, KEY_READY).unwrap().status, "True");
        let out = desired(
            &Observed {
                sgc: &s,
                invalid: Some(("InvalidSpec", "spec: bad".into())),
                unsatisfied: None,
                key: None,
                lb_status: None,
            },
            now(),
        );
        assert_eq!(ready(&out).reason, "InvalidSpec");
        assert_eq!(ready(&out).message, "spec: bad");
        assert!(cond(&out.conditions, KEY_READY).is_none());
    }

    #[test]
    fn an_unchanged_status_is_recognised() {
        let s = sgc(POOL_OK);
        let first = desired(
            &Observed {
                sgc: &s,
                invalid: None,
                unsatisfied: None,
                key: key(),
                lb_status: None,
            },
            now(),
        );
        let mut again = s.clone();
        again.status = Some(first.clone());
        let later = Time(Timestamp::from_second(2000).unwrap());
        let second = desired(
            &Observed {
                sgc: &again,
                invalid: None,
                unsatisfied: None,
                key: key(),
                lb_status: None,
            },
            later,
        );
        assert_eq!(first, second);
    }
}
