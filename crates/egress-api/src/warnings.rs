//! The checks the original's CRD does not make, as admission **warnings**: the CEL of a
//! ValidatingAdmissionPolicy the chart ships with `validationActions: [Warn]` (the API server
//! then answers `Warning:` headers, which kubectl prints, and stores the object), and which
//! `egressctl validate` evaluates offline with the same CEL. The schema accepts everything the
//! original's published CRD accepts (its schema is the floor); what these rules catch the
//! operator reports as a `Ready=False` condition with the reason, so nothing is lost by
//! accepting it. CEL in a CRD cannot warn (a failing `x-kubernetes-validations` rule, with or
//! without `messageExpression`/`reason`, always refuses the write), hence a policy.
//!
//! Each message starts with the field it is about (`spec.excludeCidrs: ...`) and says what
//! happens if it is left as it is. `make generate` writes the policy's `variables` and
//! `validations` to `charts/kube-egress-gateway/files/sgc-warnings.yaml`.

use serde_json::{Value, json};

/// One named CEL variable of the policy (`variables.<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Name.
    pub name: &'static str,
    /// CEL over `object` / `oldObject`.
    pub expression: String,
}

/// One warning: `expression` is true when the object is fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// CEL; true = no warning.
    pub expression: String,
    /// CEL string: the warning text (starts with the field path).
    pub message_expression: String,
    /// Fixed fallback message (used when `message_expression` fails).
    pub message: String,
}

fn spec_str(root: &str, field: &str) -> String {
    format!("(has({root}.spec.{field}) ? {root}.spec.{field} : '')")
}

fn profile_field(root: &str, field: &str, empty: &str) -> String {
    format!(
        "(has({root}.spec.gatewayVmssProfile) && has({root}.spec.gatewayVmssProfile.{field}) ? {root}.spec.gatewayVmssProfile.{field} : {empty})"
    )
}

/// The policy's variables.
pub fn variables() -> Vec<Variable> {
    let rg = profile_field("object", "vmssResourceGroup", "''");
    let name = profile_field("object", "vmssName", "''");
    let size = profile_field("object", "publicIpPrefixSize", "0");
    vec![
        Variable {
            name: "nodepool",
            expression: spec_str("object", "gatewayNodepoolName"),
        },
        Variable {
            name: "vmssResourceGroup",
            expression: rg.clone(),
        },
        Variable {
            name: "vmssName",
            expression: name.clone(),
        },
        Variable {
            name: "prefixSize",
            expression: size,
        },
        // The original writes `gatewayVmssProfile: {}` (and 0 for the size) when none is used.
        Variable {
            name: "profileUsed",
            expression: format!("{rg} != '' || {name} != '' || variables.prefixSize != 0"),
        },
        Variable {
            name: "publicIps",
            expression: "!has(object.spec.provisionPublicIps) || object.spec.provisionPublicIps"
                .into(),
        },
        Variable {
            name: "prefixId",
            expression: spec_str("object", "publicIpPrefixId"),
        },
        Variable {
            name: "badCidrs",
            expression: "has(object.spec.excludeCidrs) ? object.spec.excludeCidrs.filter(c, !isCIDR(c)) : []".into(),
        },
        Variable {
            name: "ipv6",
            expression: "has(object.spec.ipFamilies) && 'IPv6' in object.spec.ipFamilies".into(),
        },
        Variable {
            name: "ipv6PrefixId",
            expression: spec_str("object", "publicIpv6PrefixId"),
        },
        // IPv6 entries of a gateway without IPv6 egress (semantics::ignored_exclude_cidrs).
        Variable {
            name: "ipv6Cidrs",
            expression: "has(object.spec.excludeCidrs) && !variables.ipv6 ? object.spec.excludeCidrs.filter(c, isCIDR(c) && c.contains(':')) : []".into(),
        },
        // The requirements of `podSelector` the API server would refuse in a Pod's own
        // selectors (selection.rs parses the same way): such a selector selects no pod.
        Variable {
            name: "badSelector",
            expression: "has(object.spec.podSelector) && has(object.spec.podSelector.matchExpressions) ? object.spec.podSelector.matchExpressions.filter(e, !(e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']) || e.key == '' || ((e.operator == 'In' || e.operator == 'NotIn') != (has(e.values) && size(e.values) > 0))) : []".into(),
        },
    ]
}

fn immutable(field: &str, old: String, new: String, what: &str, why: &str) -> Validation {
    Validation {
        expression: format!("oldObject == null || {old} == {new}"),
        message_expression: format!(
            "'spec.{field}: changed from \"' + string({old}) + '\" to \"' + string({new}) + '\" after creation; the operator keeps the {what} the gateway was provisioned with ({why}) and reports Ready=False/ImmutableFieldChanged: revert the change, or create a new StaticGatewayConfiguration'"
        ),
        message: format!(
            "spec.{field}: changed after creation; the operator keeps the {what} it was provisioned with and reports Ready=False/ImmutableFieldChanged"
        ),
    }
}

/// The policy's validations, in the order their warnings are reported.
pub fn validations() -> Vec<Validation> {
    let v = |expression: &str, message_expression: &str, message: &str| Validation {
        expression: expression.into(),
        message_expression: message_expression.into(),
        message: message.into(),
    };
    vec![
        v(
            "(variables.nodepool != '') != variables.profileUsed",
            "'spec: exactly one of gatewayNodepoolName and gatewayVmssProfile must be set, found ' + (variables.profileUsed ? 'both' : 'neither') + '; the gateway will not be provisioned (the operator reports Ready=False/InvalidGatewayPool)'",
            "spec: exactly one of gatewayNodepoolName and gatewayVmssProfile must be set; the gateway will not be provisioned",
        ),
        v(
            "!variables.profileUsed || variables.vmssResourceGroup != ''",
            "'spec.gatewayVmssProfile.vmssResourceGroup: required when gatewayVmssProfile is used; the gateway will not be provisioned (Ready=False/InvalidGatewayPool)'",
            "spec.gatewayVmssProfile.vmssResourceGroup: required when gatewayVmssProfile is used",
        ),
        v(
            "!variables.profileUsed || variables.vmssName != ''",
            "'spec.gatewayVmssProfile.vmssName: required when gatewayVmssProfile is used; the gateway will not be provisioned (Ready=False/InvalidGatewayPool)'",
            "spec.gatewayVmssProfile.vmssName: required when gatewayVmssProfile is used",
        ),
        v(
            "!variables.profileUsed || !variables.publicIps || (variables.prefixSize >= 28 && variables.prefixSize <= 31)",
            "'spec.gatewayVmssProfile.publicIpPrefixSize: ' + (variables.prefixSize == 0 ? 'unset' : string(variables.prefixSize)) + ', but with provisionPublicIps: true the managed public IP prefix needs a length Azure accepts (28-31); the gateway will not be provisioned (Ready=False/InvalidPrefixSize)'",
            "spec.gatewayVmssProfile.publicIpPrefixSize: must be 28-31 with provisionPublicIps: true",
        ),
        v(
            "variables.prefixId == '' || variables.prefixId.matches('(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\\\\.network/publicipprefixes/[^/]+$')",
            "'spec.publicIpPrefixId: \"' + variables.prefixId + '\" is not a public IP prefix resource ID (/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/publicIPPrefixes/<name>); the gateway will not be provisioned (Ready=False/InvalidPrefixId)'",
            "spec.publicIpPrefixId: must be a public IP prefix resource ID",
        ),
        v(
            "variables.publicIps || variables.prefixId == ''",
            "'spec.publicIpPrefixId: set with provisionPublicIps: false (private IP mode has no public IP prefix); the gateway will not be provisioned (Ready=False/InvalidPrefixId)'",
            "spec.publicIpPrefixId: only with provisionPublicIps: true",
        ),
        v(
            "size(variables.badCidrs) == 0",
            "'spec.excludeCidrs: ' + variables.badCidrs.map(c, '\"' + c + '\"').join(', ') + (size(variables.badCidrs) == 1 ? ' is not' : ' are not') + ' an IPv4 or IPv6 CIDR such as 10.0.0.0/8; pods naming this gateway cannot start (the CNI manager refuses them) and the operator reports Ready=False/InvalidExcludeCidrs'",
            "spec.excludeCidrs: every entry must be an IPv4 or IPv6 CIDR",
        ),
        v(
            "size(variables.ipv6Cidrs) == 0",
            "'spec.excludeCidrs: ' + variables.ipv6Cidrs.map(c, '\"' + c + '\"').join(', ') + (size(variables.ipv6Cidrs) == 1 ? ' is an IPv6 CIDR' : ' are IPv6 CIDRs') + ', but this gateway carries IPv4 only (IPv6 traffic of its pods leaves through their node, untouched; add IPv6 to spec.ipFamilies for IPv6 egress), so ' + (size(variables.ipv6Cidrs) == 1 ? 'the entry has' : 'the entries have') + ' no effect (the operator reports ExcludeCidrsIgnored=True/IPv6NotEnabled)'",
            "spec.excludeCidrs: IPv6 entries have no effect: the gateway carries IPv4 only",
        ),
        v(
            "variables.ipv6PrefixId == '' || variables.ipv6PrefixId.matches('(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\\\\.network/publicipprefixes/[^/]+$')",
            "'spec.publicIpv6PrefixId: \"' + variables.ipv6PrefixId + '\" is not a public IP prefix resource ID (/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/publicIPPrefixes/<name>); IPv6 egress will not be provisioned (IPv6Ready=False/InvalidPrefixId)'",
            "spec.publicIpv6PrefixId: must be a public IP prefix resource ID",
        ),
        v(
            "variables.ipv6PrefixId == '' || (variables.ipv6 && variables.publicIps)",
            "'spec.publicIpv6PrefixId: set ' + (variables.ipv6 ? 'with provisionPublicIps: false (private IP mode has no public IP prefix)' : 'without IPv6 in spec.ipFamilies') + ', so it is not used (IPv6Ready=False/InvalidPrefixId)'",
            "spec.publicIpv6PrefixId: only with IPv6 in spec.ipFamilies and provisionPublicIps: true",
        ),
        v(
            "size(variables.badSelector) == 0",
            "'spec.podSelector.matchExpressions: ' + variables.badSelector.map(e, '\"' + e.key + ' ' + e.operator + '\"').join(', ') + ': each entry needs a key and the operator In or NotIn with at least one value, or Exists or DoesNotExist without values; this selector selects no pod (the operator reports SelectorConflict=True/InvalidPodSelector)'",
            "spec.podSelector.matchExpressions: each entry needs a key and the operator In or NotIn with values, or Exists or DoesNotExist without; this selector selects no pod",
        ),
        immutable(
            "gatewayNodepoolName",
            spec_str("oldObject", "gatewayNodepoolName"),
            "variables.nodepool".into(),
            "node pool",
            "moving would strand its Azure resources",
        ),
        immutable(
            "gatewayVmssProfile.vmssResourceGroup",
            profile_field("oldObject", "vmssResourceGroup", "''"),
            "variables.vmssResourceGroup".into(),
            "scale set",
            "moving would strand its Azure resources",
        ),
        immutable(
            "gatewayVmssProfile.vmssName",
            profile_field("oldObject", "vmssName", "''"),
            "variables.vmssName".into(),
            "scale set",
            "moving would strand its Azure resources",
        ),
        immutable(
            "gatewayVmssProfile.publicIpPrefixSize",
            profile_field("oldObject", "publicIpPrefixSize", "0"),
            "variables.prefixSize".into(),
            "public IP prefix length",
            "Azure cannot resize a prefix",
        ),
    ]
}

/// The `variables` and `validations` of the policy, as the chart's template embeds them.
pub fn policy_rules() -> Value {
    json!({
        "variables": variables().iter().map(|v| json!({"name": v.name, "expression": v.expression})).collect::<Vec<_>>(),
        "validations": validations().iter().map(|v| json!({
            "expression": v.expression,
            "messageExpression": v.message_expression,
            "message": v.message,
        })).collect::<Vec<_>>(),
    })
}
