//! Every admission rule of StaticGatewayConfiguration with a passing and a failing case, checked
//! through `egressctl validate`'s engine (the same schema and CEL rules a cluster enforces).
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

/// Errors as `field: message`.
fn errors(spec: &str) -> Vec<String> {
    let docs = input::split("t.yaml", &sgc(spec));
    let report = Validator::new().unwrap().validate(&docs);
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect()
}

fn assert_ok(spec: &str) {
    let e = errors(spec);
    assert!(e.is_empty(), "expected valid, got {e:?} for\n{spec}");
}

fn assert_err(spec: &str, field: &str, fragment: &str) {
    let e = errors(spec);
    assert!(
        e.iter()
            .any(|m| m.starts_with(&format!("{field}: ")) && m.contains(fragment)),
        "expected an error on {field} containing {fragment:?}, got {e:?} for\n{spec}"
    );
}

const VMSS: &str =
    "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: 31";

#[test]
fn exactly_one_of_nodepool_and_vmss_profile() {
    assert_ok("gatewayNodepoolName: pool");
    assert_ok(VMSS);
    assert_ok("gatewayNodepoolName: pool\ngatewayVmssProfile: {}");
    assert_err(
        &format!("gatewayNodepoolName: pool\n{VMSS}"),
        "spec",
        "exactly one of gatewayNodepoolName or gatewayVmssProfile",
    );
    assert_err("provisionPublicIps: true", "spec", "exactly one of");
    assert_err("gatewayVmssProfile: {}", "spec", "exactly one of");
}

#[test]
fn vmss_profile_needs_resource_group_and_name() {
    assert_err(
        "gatewayVmssProfile:\n  vmssName: vmss\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssResourceGroup",
        "Required value",
    );
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssName",
        "Required value",
    );
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: ''\n  vmssName: vmss\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssResourceGroup",
        "at least 1 chars long",
    );
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: ''\n  publicIpPrefixSize: 31",
        "spec.gatewayVmssProfile.vmssName",
        "at least 1 chars long",
    );
}

#[test]
fn prefix_size_is_28_to_31_and_required_for_public_ips() {
    for size in 28..=31 {
        assert_ok(&format!(
            "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: {size}"
        ));
    }
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: 27",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "greater than or equal to 28",
    );
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\n  publicIpPrefixSize: 32",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "less than or equal to 31",
    );
    assert_err(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "Required value",
    );
    // Private mode has no prefix, so no size is needed.
    assert_ok(
        "gatewayVmssProfile:\n  vmssResourceGroup: rg\n  vmssName: vmss\nprovisionPublicIps: false",
    );
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
        assert_err(
            &format!("{VMSS}\npublicIpPrefixId: {id}"),
            "spec.publicIpPrefixId",
            "must be the resource ID of a public IP prefix",
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
    assert_err(
        &format!("gatewayNodepoolName: pool\nprovisionPublicIps: false\npublicIpPrefixId: {id}"),
        "spec.publicIpPrefixId",
        "Forbidden: may only be set when provisionPublicIps is true",
    );
}

#[test]
fn every_exclude_cidr_is_an_ipv4_or_ipv6_cidr() {
    assert_ok(
        "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8, 192.0.2.0/24, 'fd00::/8', '2001:db8::/32']",
    );
    assert_err(
        "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8, 10.0.0.0]",
        "spec.excludeCidrs[1]",
        "must be an IPv4 or IPv6 CIDR",
    );
    assert_err(
        "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/33]",
        "spec.excludeCidrs[0]",
        "must be an IPv4 or IPv6 CIDR",
    );
    assert_err(
        "gatewayNodepoolName: pool\nexcludeCidrs: [not-a-cidr]",
        "spec.excludeCidrs[0]",
        "must be an IPv4 or IPv6 CIDR",
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

fn update_errors(old: &str, new: &str) -> Vec<String> {
    let (_, crd) = egress_api::crds::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == "StaticGatewayConfiguration")
        .unwrap();
    let v = SchemaValidator::new(&egress_api::crds::schema_of(&crd).unwrap()).unwrap();
    let mut old = sgc_value(old);
    v.apply_defaults(&mut old);
    let mut new = sgc_value(new);
    v.admit(&mut new, Some(&old))
        .1
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn pool_vmss_and_prefix_size_are_immutable() {
    assert!(
        update_errors(
            "gatewayNodepoolName: pool",
            "gatewayNodepoolName: pool\nexcludeCidrs: [10.0.0.0/8]"
        )
        .is_empty()
    );
    assert!(
        update_errors(
            VMSS,
            &format!("{VMSS}\nprovisionPublicIps: true\ndefaultRoute: azureNetworking")
        )
        .is_empty()
    );
    // An empty profile and no profile are the same thing.
    assert!(
        update_errors(
            "gatewayNodepoolName: pool",
            "gatewayNodepoolName: pool\ngatewayVmssProfile: {}"
        )
        .is_empty()
    );
    let e = update_errors("gatewayNodepoolName: pool", "gatewayNodepoolName: other");
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.gatewayNodepoolName: ") && m.contains("is immutable")),
        "{e:?}"
    );
    let e = update_errors(VMSS, &VMSS.replace("vmssName: vmss", "vmssName: vmss2"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.gatewayVmssProfile.vmssName: ")
                && m.contains("is immutable")),
        "{e:?}"
    );
    let e = update_errors(VMSS, &VMSS.replace("rg", "rg2"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.gatewayVmssProfile.vmssResourceGroup: ")),
        "{e:?}"
    );
    let e = update_errors(VMSS, &VMSS.replace("31", "30"));
    assert!(
        e.iter().any(
            |m| m.starts_with("spec.gatewayVmssProfile.publicIpPrefixSize: ")
                && m.contains("cannot resize")
        ),
        "{e:?}"
    );
}

#[test]
fn pod_endpoint_keys_and_ips_are_checked() {
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
    let e = run(pe(
        "10.244.1.5",
        "SGVsbG8gV2lyZUd1YXJkIGtleSBwYWRkaW5nISEhISE=",
    ));
    assert!(e.iter().any(|m| m.contains("spec.podIpAddress: ")), "{e:?}");
    let e = run(pe("10.244.1.5/32", "short"));
    assert!(
        e.iter()
            .any(|m| m.contains("spec.podPublicKey: ") && m.contains("WireGuard public key")),
        "{e:?}"
    );
}
