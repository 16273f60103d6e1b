//! CEL rules (`x-kubernetes-validations`) of StaticGatewayConfiguration, in one place so the
//! admission contract can be read, reviewed and tested as a whole. See docs/api.md for why
//! each rule exists.

use kube::core::{Reason, Rule};

/// An unset profile may arrive as `{}`: the original's Go type is an embedded struct that is
/// always serialised, so emptiness (not presence) decides whether a profile is used.
const PROFILE_USED: &str = "has(self.gatewayVmssProfile) && (has(self.gatewayVmssProfile.vmssResourceGroup) \
     || has(self.gatewayVmssProfile.vmssName) || has(self.gatewayVmssProfile.publicIpPrefixSize))";

pub(crate) fn exactly_one_target() -> Rule {
    Rule::new(format!("has(self.gatewayNodepoolName) != ({PROFILE_USED})"))
        .message("exactly one of gatewayNodepoolName or gatewayVmssProfile must be set")
}

pub(crate) fn prefix_size_required_for_public_ips() -> Rule {
    Rule::new(format!(
        "!({PROFILE_USED}) || !self.provisionPublicIps || has(self.gatewayVmssProfile.publicIpPrefixSize)"
    ))
    .message("is required when provisionPublicIps is true: the length (28-31) of the public IP prefix the gateway pool egresses from")
    .field_path(".gatewayVmssProfile.publicIpPrefixSize")
    .reason(Reason::FieldValueRequired)
}

pub(crate) fn prefix_id_needs_public_ips() -> Rule {
    Rule::new(
        "self.provisionPublicIps || !has(self.publicIpPrefixId) || self.publicIpPrefixId == ''",
    )
    .message(
        "may only be set when provisionPublicIps is true (private IP mode has no public IP prefix)",
    )
    .field_path(".publicIpPrefixId")
    .reason(Reason::FieldValueForbidden)
}

/// Moving an SGC to another pool would strand the secondary ipConfigs (and prefix) the operator
/// created on the old pool: a new SGC is the honest way to move.
pub(crate) fn nodepool_immutable() -> Rule {
    Rule::new(
        "(has(self.gatewayNodepoolName) ? self.gatewayNodepoolName : '') == \
         (has(oldSelf.gatewayNodepoolName) ? oldSelf.gatewayNodepoolName : '')",
    )
    .message("is immutable: create a new StaticGatewayConfiguration to use another gateway pool")
    .field_path(".gatewayNodepoolName")
}

fn profile_field_unchanged(field: &str, empty: &str) -> String {
    let side = |root: &str| {
        format!(
            "(has({root}.gatewayVmssProfile) && has({root}.gatewayVmssProfile.{field}) ? {root}.gatewayVmssProfile.{field} : {empty})"
        )
    };
    format!("{} == {}", side("self"), side("oldSelf"))
}

pub(crate) fn vmss_resource_group_immutable() -> Rule {
    Rule::new(profile_field_unchanged("vmssResourceGroup", "''"))
        .message(
            "is immutable: create a new StaticGatewayConfiguration to use another gateway VMSS",
        )
        .field_path(".gatewayVmssProfile.vmssResourceGroup")
}

pub(crate) fn vmss_name_immutable() -> Rule {
    Rule::new(profile_field_unchanged("vmssName", "''"))
        .message(
            "is immutable: create a new StaticGatewayConfiguration to use another gateway VMSS",
        )
        .field_path(".gatewayVmssProfile.vmssName")
}

/// The managed prefix is created once with this length; Azure cannot resize a prefix.
pub(crate) fn prefix_size_immutable() -> Rule {
    Rule::new(profile_field_unchanged("publicIpPrefixSize", "0"))
        .message("is immutable: Azure cannot resize a public IP prefix; create a new StaticGatewayConfiguration")
        .field_path(".gatewayVmssProfile.publicIpPrefixSize")
}

pub(crate) fn profile_needs_resource_group() -> Rule {
    Rule::new(
        "has(self.vmssResourceGroup) || (!has(self.vmssName) && !has(self.publicIpPrefixSize))",
    )
    .message("is required when gatewayVmssProfile is set")
    .field_path(".vmssResourceGroup")
    .reason(Reason::FieldValueRequired)
}

pub(crate) fn profile_needs_name() -> Rule {
    Rule::new(
        "has(self.vmssName) || (!has(self.vmssResourceGroup) && !has(self.publicIpPrefixSize))",
    )
    .message("is required when gatewayVmssProfile is set")
    .field_path(".vmssName")
    .reason(Reason::FieldValueRequired)
}

/// Azure resource IDs are case-insensitive (`resourcegroups` and `resourceGroups` both occur).
pub(crate) fn public_ip_prefix_id() -> Rule {
    Rule::new(
        r"self == '' || self.matches('(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\\.network/publicipprefixes/[^/]+$')",
    )
    .message("must be the resource ID of a public IP prefix: /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/publicIPPrefixes/<name>")
}

pub(crate) const CIDR_RULE: &str = "isCIDR(self)";
pub(crate) const CIDR_MESSAGE: &str = "must be an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8";

pub(crate) fn cidr() -> Rule {
    Rule::new(CIDR_RULE).message(CIDR_MESSAGE)
}

pub(crate) fn wireguard_key() -> Rule {
    Rule::new("self.matches('^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$')")
        .message("must be a base64-encoded 32-byte WireGuard public key")
}
