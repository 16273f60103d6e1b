//! Every check of StaticGatewayConfiguration with a passing and a failing case, through
//! `egressctl validate`'s engine. The schema accepts what the original's CRD accepts (a floor),
//! so the checks it does not make are warnings (the chart's warning policy, same CEL), and an
//! error is left only for what the original refuses too (types, enum, unknown fields).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_api::semantics::Severity;
use egress_schema::SchemaValidator;
use egressctl::input;
use egressctl::validate::Validator;
use serde_json::Value;

fn sgc(spec: &str) -> String {
    let spec = spec
        .trim()
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: StaticGatewayConfiguration\nmetadata:\n  name: t\n  namespace: default\nspec:\n{spec}\n"
    )
}

/// Findings of one severity as `field: message`.
fn findings(spec: &str, severity: Severity) -> Vec<String> {
    let docs = input::split("t.yaml", &sgc(spec));
    let report = Validator::new().unwrap().validate(&docs);
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect()
}

fn errors(spec: &str) -> Vec<String> {
    findings(spec, Severity::Error)
}

fn assert_ok(spec: &str) {
    let e = errors(spec);
    let w = findings(spec, Severity::Warning);
    assert!(
        e.is_empty() && w.is_empty(),
        "expected clean, got {e:?} {w:?} for\n{spec}"
    );
}

fn assert_err(spec: &str, field: &str, fragment: &str) {
    let e = errors(spec);
    assert!(
        e.iter()
            .any(|m| m.starts_with(&format!("{field}: ")) && m.contains(fragment)),
        "expected an error on {field} containing {fragment:?}, got {e:?} for\n{spec}"
    );
}

/// Accepted (no error, as the original accepts it), with a warning on `field`.
fn assert_warn(spec: &str, field: &str, fragment: &str) {
    let e = errors(spec);
    assert!(e.is_empty(), "expected no error, got {e:?} for\n{spec}");
    let w = findings(spec, Severity::Warning);
    assert!(
        w.iter()
            .any(|m| m.starts_with(&format!("{field}: ")) && m.contains(fragment)),
        "expected a warning on {field} containing {fragment:?}, got {w:?} for\n{spec}"
    );
}

const VMSS: &str =
    "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: 31";

#[test]
fn exactly_one_of_nodepool_and_vmss_profile() {
    assert_ok("gatewayNodepoolName: pool");
    assert_ok(VMSS);
    assert_ok("gatewayNodepoolName: pool\ngatewayVmssProfile: {}");
    // The original writes 0 for an unset size.
    assert_ok("gatewayNodepoolName: pool\ngatewayVmssProfile: {publicIpPrefixSize: 0}");
    assert_warn(
        &format!("gatewayNodepoolName: pool\n{VMSS}"),
        "spec",
        "exactly one of gatewayNodepoolName and gatewayVmssProfile must be set, found both",
    );
    assert_warn("provisionPublicIps: true", "spec", "found neither");
    assert_warn("gatewayVmssProfile: {}", "spec", "found neither");
}

#[test]
fn vmss_profile_needs_resource_group_and_name() {
    assert_warn(
        "gatewayVmssProfile:\n  vmssName: vmss\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssResourceGroup",
        "required when gatewayVmssProfile is used",
    );
    assert_warn(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssName",
        "required when gatewayVmssProfile is used",
    );
    assert_warn(
        "gatewayVmssProfile:\n  vmssResourceGroup: ''\n  vmssName: vmss\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssResourceGroup",
        "required",
    );
    assert_warn(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: ''\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssName",
        "required",
    );
}

#[test]
fn prefix_size_0_to_31_is_accepted_and_28_to_31_expected_for_public_ips() {
    for size in 28..=31 {
        assert_ok(&format!(
            "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: {size}"
        ));
    }
    // The original's schema allows 0-31: accepted, with a warning in public mode.
    assert_warn(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: 27",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "27, but with provisionPublicIps: true the managed public IP prefix needs a length Azure accepts (28-31)",
    );
    // Beyond the original's 0-31 is an error, as there.
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: 32",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "less than or equal to 31",
    );
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: -1",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "greater than or equal to 0",
    );
    assert_warn(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "unset, but with provisionPublicIps: true",
    );
    // Private mode has no prefix, so no size is needed: the manifest (size 0) is clean.
    assert_ok(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\nprovisionPublicIps: false",
    );
    for size in [0, 5, 27, 31] {
        assert_ok(&format!(
            "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: {size}\nprovisionPublicIps: false"
        ));
    }
}

#[test]
fn public_ip_prefix_id_must_be_a_prefix_resource_id_in_any_case() {
    for id in [
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p",
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/publicipprefixes/p",
        "/SUBSCRIPTIONS/s/RESOURCEGROUPS/rg/PROVIDERS/MICROSOFT.NETWORK/PUBLICIPPREFIXES/p",
    ] {
        assert_ok(&format!("{VMSS}\npublicIpPrefixId: {id}"));
    }
    for id in [
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p/extra",
        "publicIPPrefixes/p",
        "/subscriptions//resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p",
    ] {
        assert_warn(
            &format!("{VMSS}\npublicIpPrefixId: {id}"),
            "spec.publicIpPrefixId",
            "is not a public IP prefix resource ID",
        );
    }
}

#[test]
fn public_ip_prefix_id_only_with_public_ips() {
    let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p";
    assert_ok(&format!(
        "gatewayNodepoolName: pool\nprovisionPublicIps: true\npublicIpPrefixId: {id}"
    ));
    assert_ok("gatewayNodepoolName: pool\nprovisionPublicIps: false\npublicIpPrefixId: ''");
    assert_warn(
        &format!("gatewayNodepoolName: pool\nprovisionPublicIps: false\npublicIpPrefixId: {id}"),
        "spec.publicIpPrefixId",
        "set with provisionPublicIps: false",
    );
}

#[test]
fn ip_families_must_include_ipv4_and_an_ipv6_prefix_id_needs_ipv6() {
    assert_ok("gatewayNodepoolName: pool\nipFamilies: [IPv4]");
    assert_ok("gatewayNodepoolName: pool\nipFamilies: [IPv6, IPv4]");
    assert_err(
        "gatewayNodepoolName: pool\nipFamilies: [IPv6]",
        "spec.ipFamilies",
        "must include IPv4",
    );
    assert_err(
        "gatewayNodepoolName: pool\nipFamilies: [IPv4, IPv4]",
        "spec.ipFamilies[1]",
        "Duplicate value: \"IPv4\"",
    );
    assert_err(
        "gatewayNodepoolName: pool\nipFamilies: [IPv5]",
        "spec.ipFamilies[0]",
        "Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\"",
    );
    assert_warn(
        "gatewayNodepoolName: pool\npublicIpv6PrefixId: /subscriptions/s/resourceGroups/g/providers/Microsoft.Network/publicIPPrefixes/p6",
        "spec.publicIpv6PrefixId",
        "set without IPv6 in spec.ipFamilies, so it is not used",
    );
    assert_warn(
        "gatewayNodepoolName: pool\nipFamilies: [IPv4, IPv6]\npublicIpv6PrefixId: p6",
        "spec.publicIpv6PrefixId",
        "\"p6\" is not a public IP prefix resource ID",
    );
}

#[test]
fn every_exclude_cidr_should_be_an_ipv4_or_ipv6_cidr() {
    assert_ok("gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8, 192.0.2.0/24]");
    // IPv6 entries are CIDRs, but the gateway carries IPv4 only: never silently ignored.
    assert_warn(
        "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8, 'fd00::/8', '2001:db8::/32']",
        "spec.excludeCidrs",
        "\"fd00::/8\", \"2001:db8::/32\" are IPv6 CIDRs, but this gateway carries IPv4 only",
    );
    assert_warn(
        "gatewayNodepoolName: pool\nexcludeCidrs: ['fd00::/8']",
        "spec.excludeCidrs",
        "\"fd00::/8\" is an IPv6 CIDR, but this gateway carries IPv4 only (IPv6 traffic of its pods leaves through their node, untouched; add IPv6 to spec.ipFamilies for IPv6 egress), so the entry has no effect (the operator reports ExcludeCidrsIgnored=True/IPv6NotEnabled)",
    );
    // With IPv6 egress they are honoured.
    assert_ok(
        "gatewayNodepoolName: pool\nipFamilies: [IPv4, IPv6]\nexcludeCidrs: [10.0.0.0/8, 'fd00::/8']",
    );
    assert_warn(
        "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8, 10.0.0.0]",
        "spec.excludeCidrs",
        "\"10.0.0.0\" is not an IPv4 or IPv6 CIDR",
    );
    assert_warn(
        "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/33, not-a-cidr]",
        "spec.excludeCidrs",
        "\"10.0.0.0/33\", \"not-a-cidr\" are not an IPv4 or IPv6 CIDR",
    );
}

#[test]
fn default_route_is_one_of_two_values() {
    assert_ok(
        "gatewayNodepoolName: pool\ndefaultRoute: azureNetworking\nexcludeCidrs: [10.0.0.0/8]",
    );
    assert_ok("gatewayNodepoolName: pool\ndefaultRoute: staticEgressGateway");
    assert_err(
        "gatewayNodepoolName: pool\ndefaultRoute: AzureNetworking",
        "spec.defaultRoute",
        "supported values: \"staticEgressGateway\", \"azureNetworking\"",
    );
}

#[test]
fn unknown_fields_are_rejected_with_a_suggestion() {
    assert_err(
        "gatewayNodepoolName: pool\nexcludeCIDRs: [10.0.0.0/8]",
        "spec.excludeCIDRs",
        "did you mean \"excludeCidrs\"",
    );
    assert_err(
        "gatewayNodepoolName: pool\npublicIpPrefixSize: 31",
        "spec.publicIpPrefixSize",
        "unknown field",
    );
}

fn sgc_value(spec: &str) -> Value {
    input::split("t.yaml", &sgc(spec)).remove(0).value.unwrap()
}

/// The warnings of an update from `old` to `new` (both defaulted, as stored).
fn update_warnings(old: &str, new: &str) -> Vec<String> {
    let (_, crd) = egress_api::crds::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == "StaticGatewayConfiguration")
        .unwrap();
    let v = SchemaValidator::new(&egress_api::crds::schema_of(&crd).unwrap()).unwrap();
    let mut old = sgc_value(old);
    v.apply_defaults(&mut old);
    let mut new = sgc_value(new);
    let (_, errors) = v.admit(&mut new, Some(&old));
    assert!(
        errors.is_empty(),
        "an update the original accepts: {errors:?}"
    );
    Validator::new()
        .unwrap()
        .sgc_warnings(&new, Some(&old))
        .into_iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect()
}

#[test]
fn changing_pool_vmss_or_prefix_size_is_accepted_with_a_warning() {
    assert!(
        update_warnings(
            "gatewayNodepoolName: pool",
            "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8]"
        )
        .is_empty()
    );
    assert!(
        update_warnings(
            VMSS,
            &format!("{VMSS}\nprovisionPublicIps: true\ndefaultRoute: azureNetworking\nexcludeCidrs: [10.0.0.0/8]")
        )
        .is_empty()
    );
    // An empty profile and no profile are the same thing.
    assert!(
        update_warnings(
            "gatewayNodepoolName: pool",
            "gatewayNodepoolName: pool\ngatewayVmssProfile: {}"
        )
        .is_empty()
    );
    let e = update_warnings("gatewayNodepoolName: pool", "gatewayNodepoolName: other");
    assert!(
        e.iter().any(|m| m.starts_with("spec.gatewayNodepoolName: ")
            && m.contains("changed from \"pool\" to \"other\"")
            && m.contains("ImmutableFieldChanged")),
        "{e:?}"
    );
    let e = update_warnings(VMSS, &VMSS.replace("vmssName: vmss", "vmssName: vmss2"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.gatewayVmssProfile.vmssName: ")),
        "{e:?}"
    );
    let e = update_warnings(VMSS, &VMSS.replace("rg", "rg2"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.gatewayVmssProfile.vmssResourceGroup: ")),
        "{e:?}"
    );
    let e = update_warnings(VMSS, &VMSS.replace("31", "30"));
    assert!(
        e.iter().any(
            |m| m.starts_with("spec.gatewayVmssProfile.publicIpPrefixSize: ")
                && m.contains("cannot resize")
        ),
        "{e:?}"
    );
}

#[test]
fn pod_endpoint_keys_and_ips_are_warned_about() {
    let pe = |ip: &str, key: &str| {
        format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: PodEndpoint\nmetadata: {{name: p, namespace: d}}\nspec:\n  staticGatewayConfiguration: g\n  podIpAddress: {ip}\n  podPublicKey: {key}\n"
        )
    };
    let run = |text: String| {
        Validator::new()
            .unwrap()
            .validate(&input::split("p.yaml", &text))
            .findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        run(pe(
            "10.244.1.5/32",
            "SGVsbG8gV2lyZUd1YXJkIGtleSBwYWRkaW5nISEhISE="
        ))
        .is_empty()
    );
    // The original's schema takes any strings: accepted, with a warning (daemons refuse it).
    let e = run(pe(
        "10.244.1.5",
        "SGVsbG8gV2lyZUd1YXJkIGtleSBwYWRkaW5nISEhISE=",
    ));
    assert!(
        e.iter().any(|m| m.contains("spec.podIpAddress: warning: ")),
        "{e:?}"
    );
    let e = run(pe("10.244.1.5/32", "short"));
    assert!(
        e.iter()
            .any(|m| m.contains("spec.podPublicKey: warning: ")
                && m.contains("WireGuard public key")),
        "{e:?}"
    );
}

#[test]
fn pod_selector_must_parse_and_match_all_is_warned() {
    assert_ok("gatewayNodepoolName: pool\npodSelector: {matchLabels: {app: web}}");
    assert_ok(
        "gatewayNodepoolName: pool\npodSelector:\n  matchExpressions:\n  - {key: tier, operator: In, values: [front]}\n  - {key: canary, operator: DoesNotExist}",
    );
    assert_warn(
        "gatewayNodepoolName: pool\npodSelector: {}",
        "spec.podSelector",
        "selects every pod of the namespace",
    );
    for bad in [
        "{key: tier, operator: Equals, values: [front]}",
        "{key: tier, operator: In}",
        "{key: tier, operator: Exists, values: [x]}",
    ] {
        let spec =
            format!("gatewayNodepoolName: pool\npodSelector:\n  matchExpressions:\n  - {bad}");
        // The cluster accepts it with a warning (the original's schema has no podSelector to
        // be compatible with, but its CRDs carry no refusing rule at all); validate refuses it.
        let w = findings(&spec, Severity::Warning);
        assert!(
            w.iter()
                .any(|m| m.starts_with("spec.podSelector.matchExpressions: ")
                    && m.contains("selects no pod")),
            "{bad}: {w:?}"
        );
        assert_err(&spec, "spec.podSelector", "selects no pod");
    }
}
