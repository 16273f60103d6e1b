//! Checks the CRD schema cannot express, shared by `egressctl validate` and the operator:
//! suspicious-but-legal values (warnings) and pod annotations that can never work (errors).

use std::collections::HashSet;

use crate::{DefaultRoute, PodEndpointSpec, StaticGatewayConfigurationSpec};

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Legal, but probably not what the user meant.
    Warning,
    /// Will not work.
    Error,
}

/// One finding about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path, e.g. `spec.excludeCidrs[1]`.
    pub field: String,
    /// Warning or error.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    fn warning(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            severity: Severity::Warning,
            message: message.into(),
        }
    }
    fn error(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            severity: Severity::Error,
            message: message.into(),
        }
    }
}

/// The `excludeCidrs` entries of an IP family the gateway does not carry (IPv6 without `IPv6`
/// in `ipFamilies`: a pod's IPv6 traffic then leaves through its node and an IPv6 entry
/// changes nothing), as written. Never silently ignored: `egressctl validate` and admission
/// warn (the warning policy's `ipv6Cidrs`, `crate::warnings`), and the operator reports them
/// in the `ExcludeCidrsIgnored` condition.
pub fn ignored_exclude_cidrs(spec: &StaticGatewayConfigurationSpec) -> Vec<String> {
    if spec.target.ipv6() {
        return Vec::new();
    }
    spec.exclude_cidrs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|raw| matches!(raw.parse(), Some(ipnet::IpNet::V6(_))))
        .map(ToString::to_string)
        .collect()
}

/// Why an IPv6 `excludeCidrs` entry does nothing (shared by the warning and the condition).
pub const IPV6_EXCLUDE_IGNORED: &str = "is an IPv6 CIDR, but this gateway carries IPv4 only (IPv6 traffic of its pods leaves through their node, untouched; add IPv6 to spec.ipFamilies for IPv6 egress), so the entry has no effect";

/// Semantic checks of a StaticGatewayConfiguration spec that passed schema validation.
pub fn check_sgc(spec: &StaticGatewayConfigurationSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    let cidrs = spec.exclude_cidrs.as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, raw) in cidrs.iter().enumerate() {
        let field = format!("spec.excludeCidrs[{i}]");
        let Some(net) = raw.parse() else { continue };
        if net.trunc() != net {
            out.push(Problem::warning(
                &field,
                format!("{raw} has host bits set; it is used as {}", net.trunc()),
            ));
        }
        if !seen.insert(net.trunc()) {
            out.push(Problem::warning(
                &field,
                format!("{raw} is listed more than once"),
            ));
        }
        if net.prefix_len() == 0 && spec.default_route == DefaultRoute::StaticEgressGateway {
            out.push(Problem::warning(
                &field,
                format!("{raw} excludes every destination: no traffic will use the gateway"),
            ));
        }
    }
    check_pod_selector(spec, &mut out);
    if spec.default_route == DefaultRoute::AzureNetworking && cidrs.is_empty() {
        out.push(Problem::warning(
            "spec.excludeCidrs",
            "with defaultRoute azureNetworking only excludeCidrs go through the gateway, and none are listed: no traffic will use the gateway",
        ));
    }
    out
}

/// `spec.podSelector`: one that does not parse is an error (it selects no pod; the schema's
/// rule rejects it where the API server enforces CRD validation rules); `{}` is legal but
/// selects every pod of the namespace, which is warned.
fn check_pod_selector(spec: &StaticGatewayConfigurationSpec, out: &mut Vec<Problem>) {
    let Some(selector) = &spec.pod_selector else {
        return;
    };
    match crate::selection::PodSelector::parse(selector) {
        Err(e) => out.push(Problem::error(
            "spec.podSelector",
            format!("{e}: this selector selects no pod"),
        )),
        Ok(s) if s.selects_all() => out.push(Problem::warning(
            "spec.podSelector",
            "{} selects every pod of the namespace (annotated pods excepted): any other SGC with a podSelector there conflicts with it for the pods both match",
        )),
        Ok(_) => {}
    }
}

/// Checks of a PodEndpoint the schema no longer makes (the original's accepts any strings):
/// warnings, because gateway daemons refuse such a PodEndpoint (`InvalidPodEndpoint`).
pub fn check_pod_endpoint(spec: &PodEndpointSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    let consequence = "gateway daemons refuse this PodEndpoint (Event InvalidPodEndpoint)";
    match spec.pod_ip_address.as_deref() {
        Some(ip)
            if ip
                .parse::<ipnet::Ipv4Net>()
                .is_ok_and(|n| n.prefix_len() == 32) => {}
        Some(ip) => out.push(Problem::warning(
            "spec.podIpAddress",
            format!("{ip:?} is not an IPv4 host CIDR such as 10.244.1.5/32; {consequence}"),
        )),
        None => out.push(Problem::warning(
            "spec.podIpAddress",
            format!("missing; {consequence}"),
        )),
    }
    let key_ok = |k: &str| {
        let b = k.as_bytes();
        b.len() == 44
            && b[43] == b'='
            && b[..43]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
            && b"AEIMQUYcgkosw048".contains(&b[42])
    };
    if !spec.pod_public_key.as_deref().is_some_and(key_ok) {
        out.push(Problem::warning(
            "spec.podPublicKey",
            format!("not a base64-encoded 32-byte WireGuard public key; {consequence}"),
        ));
    }
    out
}

/// Checks the egress annotation of a pod (or pod template) at `field` (e.g.
/// `spec.template.metadata.annotations`). Returns the SGC name it refers to, if valid.
pub fn check_pod_annotation(
    annotation: Option<&str>,
    host_network: bool,
    field: &str,
    out: &mut Vec<Problem>,
) -> Option<String> {
    let name = annotation?;
    let field = format!("{field}[{}]", crate::constants::POD_ANNOTATION);
    if !is_dns_subdomain(name) {
        out.push(Problem::error(
            &field,
            format!("{name:?} is not a valid StaticGatewayConfiguration name (lowercase letters, digits, '-' and '.', at most 253 characters)"),
        ));
        return None;
    }
    if host_network {
        out.push(Problem::error(
            &field,
            "pods with hostNetwork: true share the node's network and cannot egress through a gateway",
        ));
        return None;
    }
    Some(name.to_string())
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::target::GatewayTarget;

    fn spec(route: DefaultRoute, cidrs: &[&str]) -> StaticGatewayConfigurationSpec {
        StaticGatewayConfigurationSpec {
            target: GatewayTarget {
                gateway_nodepool_name: Some("gw".into()),
                gateway_vmss_profile: None,
                provision_public_ips: true,
                public_ip_prefix_id: None,
                ip_families: None,
                public_ipv6_prefix_id: None,
            },
            default_route: route,
            exclude_cidrs: Some(
                cidrs
                    .iter()
                    .map(|s| crate::static_gateway_configuration::CidrText(s.to_string()))
                    .collect(),
            ),
            pod_selector: None,
        }
    }

    #[test]
    fn pod_selectors_that_do_not_parse_are_errors_and_match_all_is_warned() {
        let mut s = spec(DefaultRoute::StaticEgressGateway, &[]);
        s.pod_selector = Some(Default::default());
        let p = check_sgc(&s);
        assert_eq!(
            p.iter()
                .map(|p| (p.field.as_str(), p.severity))
                .collect::<Vec<_>>(),
            [("spec.podSelector", Severity::Warning)]
        );
        s.pod_selector = Some(
            serde_json::from_value(serde_json::json!({
                "matchExpressions": [{"key": "a", "operator": "Has"}]
            }))
            .unwrap(),
        );
        let p = check_sgc(&s);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].severity, Severity::Error);
        assert!(p[0].message.contains("\"Has\""), "{}", p[0].message);
        s.pod_selector = Some(
            serde_json::from_value(serde_json::json!({"matchLabels": {"app": "web"}})).unwrap(),
        );
        assert!(check_sgc(&s).is_empty());
    }

    #[test]
    fn ipv6_exclusions_are_found() {
        let s = spec(
            DefaultRoute::StaticEgressGateway,
            &["10.0.0.0/8", "fd00::/8", "2001:db8::1/128", "bad"],
        );
        assert_eq!(ignored_exclude_cidrs(&s), ["fd00::/8", "2001:db8::1/128"]);
        assert!(ignored_exclude_cidrs(&spec(DefaultRoute::StaticEgressGateway, &[])).is_empty());
    }

    #[test]
    fn ipv6_exclusions_apply_once_ipv6_is_enabled() {
        let mut s = spec(DefaultRoute::StaticEgressGateway, &["fd00::/8"]);
        s.target.ip_families = Some(vec![crate::target::IpFamily::IPv4]);
        assert_eq!(ignored_exclude_cidrs(&s), ["fd00::/8"]);
        s.target.ip_families = Some(vec![
            crate::target::IpFamily::IPv4,
            crate::target::IpFamily::IPv6,
        ]);
        assert!(s.target.ipv6());
        assert!(ignored_exclude_cidrs(&s).is_empty());
    }

    #[test]
    fn ipv6_prefix_length_follows_the_ipv4_one_within_azures_range() {
        use crate::target::ipv6_prefix_len_for;
        assert_eq!(ipv6_prefix_len_for(31), 127);
        assert_eq!(ipv6_prefix_len_for(28), 124);
        assert_eq!(ipv6_prefix_len_for(24), 124);
        assert_eq!(ipv6_prefix_len_for(32), 127);
    }

    #[test]
    fn clean_spec_has_no_findings() {
        assert!(check_sgc(&spec(DefaultRoute::StaticEgressGateway, &["10.0.0.0/8"])).is_empty());
    }

    #[test]
    fn host_bits_duplicates_and_catch_all_are_warned() {
        let p = check_sgc(&spec(
            DefaultRoute::StaticEgressGateway,
            &["10.0.0.1/8", "10.0.0.0/8", "0.0.0.0/0"],
        ));
        let msgs: Vec<_> = p.iter().map(|p| (p.field.as_str(), p.severity)).collect();
        assert_eq!(
            msgs,
            vec![
                ("spec.excludeCidrs[0]", Severity::Warning),
                ("spec.excludeCidrs[1]", Severity::Warning),
                ("spec.excludeCidrs[2]", Severity::Warning)
            ]
        );
        assert!(p[0].message.contains("10.0.0.0/8"));
    }

    #[test]
    fn azure_networking_without_cidrs_is_warned() {
        let p = check_sgc(&spec(DefaultRoute::AzureNetworking, &[]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "spec.excludeCidrs");
    }

    #[test]
    fn pod_annotation_must_name_an_sgc_and_not_use_host_network() {
        let mut out = Vec::new();
        assert_eq!(
            check_pod_annotation(Some("my-gw"), false, "metadata.annotations", &mut out),
            Some("my-gw".into())
        );
        assert!(out.is_empty());
        assert_eq!(
            check_pod_annotation(Some("My_GW"), false, "metadata.annotations", &mut out),
            None
        );
        assert_eq!(
            check_pod_annotation(Some("gw"), true, "metadata.annotations", &mut out),
            None
        );
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|p| p.severity == Severity::Error));
        assert_eq!(
            out[0].field,
            "metadata.annotations[kubernetes.azure.com/static-gateway-configuration]"
        );
        assert_eq!(check_pod_annotation(None, true, "x", &mut out), None);
    }
}
