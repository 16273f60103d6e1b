//! Inline fixtures of the pure pool phases' unit tests: the Kubernetes objects of a gateway
//! chain (SGC, LB and VM configuration) from YAML, settings, pools and prefixes from ARM JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use egress_api::{GatewayLBConfiguration, GatewayVMConfiguration, StaticGatewayConfiguration};
use egress_azure::ResourceGroupId;
use egress_azure::models::PublicIpPrefix;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::AzureSettings;
use crate::pool::gateway_pool::{GatewayPool, PoolKind};
use crate::pool::plan::members::{self, Member};
use crate::target::PoolKey;

/// The subscription of every fixture.
pub const SUB: &str = "00000000-0000-0000-0000-000000000000";

/// An object of `kind` named `ns/<name>` with `spec` (YAML flow mapping), `metadata` fields
/// `extra`, and the controller owner `(kind, uid)` if any.
fn object<K: DeserializeOwned>(
    kind: &str,
    name: &str,
    uid: &str,
    owner: Option<(&str, &str)>,
    spec: &str,
    extra: &str,
) -> Arc<K> {
    let owners = owner.map_or(String::new(), |(k, o)| {
        format!("ownerReferences: [{{apiVersion: v1, kind: {k}, name: {name}, uid: {o}, controller: true}}]")
    });
    Arc::new(
        serde_saphyr::from_str(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}, namespace: ns, uid: {uid}, {extra} {owners}}}\nspec: {spec}\n"
        ))
        .unwrap(),
    )
}

/// An SGC `ns/<name>` with `spec` (YAML flow mapping).
pub fn sgc(name: &str, uid: &str, spec: &str) -> Arc<StaticGatewayConfiguration> {
    object("StaticGatewayConfiguration", name, uid, None, spec, "")
}

/// The LB configuration `ns/<name>` owned by the SGC `owner`; `extra` adds metadata fields.
pub fn lb(
    name: &str,
    uid: &str,
    owner: &str,
    spec: &str,
    extra: &str,
) -> Arc<GatewayLBConfiguration> {
    let owner = Some(("StaticGatewayConfiguration", owner));
    object("GatewayLBConfiguration", name, uid, owner, spec, extra)
}

/// The VM configuration `ns/<name>` owned by the LB configuration `owner`.
pub fn vm(
    name: &str,
    uid: &str,
    owner: &str,
    spec: &str,
    extra: &str,
) -> Arc<GatewayVMConfiguration> {
    let owner = Some(("GatewayLBConfiguration", owner));
    object("GatewayVMConfiguration", name, uid, owner, spec, extra)
}

/// Settings with `resourceGroup` `rg`.
pub fn settings() -> AzureSettings {
    let rg = ResourceGroupId::new(SUB, "rg");
    AzureSettings {
        subscription_id: SUB.into(),
        resource_group: "rg".into(),
        location: "eastus".into(),
        load_balancer_id: rg.load_balancer("kubeegressgateway-ilb"),
        subnet_id: rg.subnet("vnet", "subnet"),
        probe_port: 8082,
    }
}

/// The scale set `rg/gw-vmss` of node pool `gwpool` (unique ID `pool-uid`), with the prefix
/// size tag `size` if any.
pub fn scale_set_pool(size: Option<&str>) -> GatewayPool {
    let mut tags = json!({"aks-managed-poolName": "gwpool"});
    if let Some(s) = size {
        tags["aks-managed-gatewayIPPrefixSize"] = json!(s);
    }
    let id = ResourceGroupId::new(SUB, "rg").scale_set("gw-vmss");
    let vmss = serde_json::from_value(json!({"id": id.to_string(), "name": "gw-vmss",
        "tags": tags, "properties": {"uniqueId": "pool-uid"}}))
    .unwrap();
    GatewayPool {
        kind: PoolKind::ScaleSet {
            id,
            vmss: Box::new(vmss),
        },
        unique_id: "pool-uid".into(),
    }
}

/// The VirtualMachines node pool `vmpool` with one VM tagged with the prefix size `size`.
pub fn vm_pool(size: &str) -> GatewayPool {
    let vm = serde_json::from_value(json!({"name": "gwvm-0", "tags":
        {"aks-managed-poolName": "vmpool", "aks-managed-gatewayIPPrefixSize": size}}))
    .unwrap();
    GatewayPool::vm_pool("vmpool", vec![vm])
}

/// A prefix as ARM returns it: `rg/<name>`, length `len`, range `cidr` (empty: not yet).
pub fn prefix(name: &str, len: u8, cidr: &str) -> PublicIpPrefix {
    let id = ResourceGroupId::new(SUB, "rg").public_ip_prefix(name);
    serde_json::from_value(json!({"id": id.to_string(), "name": name,
        "properties": {"prefixLength": len, "ipPrefix": cidr, "publicIPAddresses": []}}))
    .unwrap()
}

/// A complete chain `ns/<name>` (SGC, LB `l-<name>`, VM `v-<name>`) with `spec`; `lb_extra`
/// and `vm_extra` add metadata (a deletion timestamp).
pub struct Chain {
    /// SGC, LB and VM configuration name.
    pub name: &'static str,
    /// Their spec.
    pub spec: String,
    /// Extra LB configuration metadata.
    pub lb_extra: &'static str,
    /// Extra VM configuration metadata.
    pub vm_extra: &'static str,
}

/// A chain with no extra metadata.
pub fn chain(name: &'static str, spec: impl Into<String>) -> Chain {
    Chain {
        name,
        spec: spec.into(),
        lb_extra: "",
        vm_extra: "",
    }
}

/// Members of the pool `gwpool` (scale set `rg/gw-vmss` or VM pool `vmpool`), in list order
/// (creation timestamps are equal, so names order them).
pub fn members(chains: &[Chain]) -> Vec<Member> {
    let sgcs: Vec<_> = chains
        .iter()
        .map(|c| sgc(c.name, &format!("s-{}", c.name), &c.spec))
        .collect();
    let lbs: Vec<_> = chains
        .iter()
        .map(|c| {
            let (uid, owner) = (format!("l-{}", c.name), format!("s-{}", c.name));
            lb(c.name, &uid, &owner, &c.spec, c.lb_extra)
        })
        .collect();
    let vms: Vec<_> = chains
        .iter()
        .map(|c| {
            let (uid, owner) = (format!("v-{}", c.name), format!("l-{}", c.name));
            vm(c.name, &uid, &owner, &c.spec, c.vm_extra)
        })
        .collect();
    let aliases = [
        PoolKey::Nodepool("gwpool".into()),
        PoolKey::Nodepool("vmpool".into()),
    ];
    members::gather(&aliases, &sgcs, &lbs, &vms, SUB).members
}
