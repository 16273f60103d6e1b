//! The simulated cluster's fixed address plan and Azure inventory: the emulator seed generated
//! from a scenario (VNet, worker and gateway scale sets with AKS tags, BYO prefixes) and the
//! nodes it implies.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::{Value, json};

use crate::scenario::{SUBSCRIPTION_ID, Scenario, parse_prefix_id};

/// Tenant of the emulator.
pub const TENANT_ID: &str = "00000000-0000-0000-0000-000000000001";
/// Location of everything.
pub const LOCATION: &str = "eastus";
/// Resource group of the VNet and the worker scale set (the AKS node resource group).
pub const NODE_RESOURCE_GROUP: &str = "rg-nodes";
/// VNet name.
pub const VNET: &str = "aks-vnet";
/// Subnet name.
pub const SUBNET: &str = "aks-subnet";
/// Worker scale set.
pub const WORKER_VMSS: &str = "aks-nodepool1-vmss";
/// Worker node pool.
pub const WORKER_POOL: &str = "nodepool1";

/// VNet address space.
pub const VNET_CIDR: Ipv4Net = net(10, 224, 0, 0, 16);
/// Node subnet (node primary and secondary IPs, ILB frontends).
pub const SUBNET_CIDR: Ipv4Net = net(10, 224, 0, 0, 24);
/// The VNet router's address in the subnet (every node's default gateway).
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 224, 0, 1);
/// Pod CIDRs are /24s carved from here, one per worker.
pub const POD_SUPERNET: Ipv4Net = net(10, 244, 0, 0, 16);
/// The internet echo server.
pub const INTERNET_SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// A host in a peered network (or on premises) reached through the VNet router without NAT:
/// the raw echo answers on it, inside the router namespace. Traffic to it shows the private
/// source address (a pod IP, a node IP or a gateway's secondary IP).
pub const PEERED_SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 225, 0, 10);
/// The VNet edge's address on the link to the internet namespace.
pub const EDGE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Prefix length of the edge link.
pub const EDGE_PREFIX_LEN: u8 = 30;
/// Where BYO prefixes are placed.
pub const BYO_POOL: Ipv4Net = net(192, 0, 2, 64, 26);
/// Where the emulator carves managed prefixes.
pub const MANAGED_PREFIX_POOL: Ipv4Net = net(203, 0, 113, 0, 24);
/// Where the emulator takes standalone public IPs.
pub const STANDALONE_IP_POOL: Ipv4Net = net(198, 51, 100, 0, 25);
/// The cluster's outbound public IP (non-gateway traffic leaves as this).
pub const OUTBOUND_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);
/// Azure's health-probe source address, on the router's loopback.
pub const PROBE_SOURCE_IP: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
/// IMDS address inside every node.
pub const IMDS_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// Dual-stack: the VNet's IPv6 address space.
pub const VNET6_CIDR: Ipv6Net = net6([0xfd00, 0x10, 0x224, 0, 0, 0, 0, 0], 48);
/// Dual-stack: the node subnet's IPv6 range (node, secondary and ILB addresses).
pub const SUBNET6_CIDR: Ipv6Net = net6([0xfd00, 0x10, 0x224, 0, 0, 0, 0, 0], 64);
/// Dual-stack: the VNet router's IPv6 address in the subnet.
pub const ROUTER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x224, 0, 0, 0, 0, 1);
/// Dual-stack: pod IPv6 ranges are /64s carved from here, one per worker.
pub const POD6_SUPERNET: Ipv6Net = net6([0xfd00, 0x10, 0x244, 0, 0, 0, 0, 0], 56);
/// Dual-stack: the internet echo server's IPv6 address (on the edge link).
pub const INTERNET_SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
/// Dual-stack: a second internet echo address in its own /64, for IPv6 `excludeCidrs` tests.
pub const INTERNET_SERVER2_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 1);
/// Dual-stack: the VNet edge's IPv6 address on the link to the internet namespace.
pub const EDGE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
/// Dual-stack: prefix length of the edge link.
pub const EDGE6_PREFIX_LEN: u8 = 64;
/// Dual-stack: the cluster's outbound public IPv6 (non-gateway IPv6 leaves as this).
pub const OUTBOUND_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 0x200);
/// Dual-stack: where the emulator carves managed IPv6 prefixes.
pub const MANAGED_PREFIX6_POOL: Ipv6Net = net6([0x2001, 0xdb8, 0xff00, 0, 0, 0, 0, 0], 48);

const fn net6(s: [u16; 8], len: u8) -> Ipv6Net {
    let a = Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    match Ipv6Net::new(a, len) {
        Ok(n) => n,
        Err(_) => Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0),
    }
}

/// A node's IPv6 address in a dual-stack cluster, derived from its IPv4 primary so that it
/// never meets the emulator's allocations (those start at the bottom of the subnet):
/// `10.224.0.6` → `fd00:10:224::f:6`.
pub fn node_ipv6(primary: Ipv4Addr) -> Ipv6Addr {
    let [_, _, c, d] = primary.octets();
    let s = SUBNET6_CIDR.network().segments();
    Ipv6Addr::new(
        s[0],
        s[1],
        s[2],
        s[3],
        0,
        0,
        0xf + u16::from(c),
        u16::from(d),
    )
}

/// Pod IPv6 range of worker `i` in a dual-stack cluster (`fd00:10:244:<i>::/64`).
pub fn pod6_cidr(i: u32) -> Option<Ipv6Net> {
    let s = POD6_SUPERNET.network().segments();
    let fourth = u16::try_from(i).ok()?;
    Ipv6Net::new(Ipv6Addr::new(s[0], s[1], s[2], fourth, 0, 0, 0, 0), 64).ok()
}

const fn net(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    match Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len) {
        Ok(n) => n,
        Err(_) => Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0),
    }
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs pods, a cni-manager and the kubelet.
    Worker,
    /// Runs a gateway daemon.
    Gateway,
}

/// A node of the simulated cluster (= a scale-set instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Kubernetes node name = computer name.
    pub name: String,
    /// Worker or gateway.
    pub role: Role,
    /// AKS node pool.
    pub pool: String,
    /// Scale set.
    pub vmss: String,
    /// Resource group of the scale set.
    pub resource_group: String,
    /// Instance ID in the scale set.
    pub instance: u32,
    /// Pod CIDR (workers only).
    pub pod_cidr: Option<Ipv4Net>,
    /// Pod IPv6 range (workers of a dual-stack cluster only).
    pub pod6_cidr: Option<Ipv6Net>,
}

/// Computer name of scale-set instance `i`: the scale-set name plus 6 base-36 digits (AKS).
pub fn computer_name(vmss: &str, i: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = i;
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    format!("{vmss}{}", String::from_utf8_lossy(&out))
}

/// Every node of a scenario: workers first, then gateway pools in order.
pub fn nodes(scenario: &Scenario) -> Vec<NodeSpec> {
    let mut out = Vec::new();
    for i in 0..scenario.workers {
        out.push(NodeSpec {
            name: computer_name(WORKER_VMSS, i),
            role: Role::Worker,
            pool: WORKER_POOL.into(),
            vmss: WORKER_VMSS.into(),
            resource_group: cloud_resource_group(scenario),
            instance: i,
            pod_cidr: pod_cidr(i),
            pod6_cidr: pod6_cidr(i).filter(|_| scenario.dual_stack),
        });
    }
    for pool in &scenario.gateway_pools {
        for i in 0..pool.instances {
            out.push(NodeSpec {
                name: computer_name(&pool.vmss_name, i),
                role: Role::Gateway,
                pool: pool.name.clone(),
                vmss: pool.vmss_name.clone(),
                resource_group: pool.resource_group.clone(),
                instance: i,
                pod_cidr: None,
                pod6_cidr: None,
            });
        }
    }
    out
}

/// Pod CIDR of worker `i`.
pub fn pod_cidr(i: u32) -> Option<Ipv4Net> {
    let third = u8::try_from(i).ok()?;
    Ipv4Net::new(Ipv4Addr::new(10, 244, third, 0), 24).ok()
}

/// The operator's `resourceGroup` (managed prefixes, the ILB, node-pool lookups): the first
/// gateway pool's group, as AKS keeps every node pool in one node resource group.
pub fn cloud_resource_group(scenario: &Scenario) -> String {
    scenario.gateway_pools.first().map_or_else(
        || NODE_RESOURCE_GROUP.to_string(),
        |p| p.resource_group.clone(),
    )
}

/// Addresses of each BYO prefix, in scenario order: aligned blocks of [`BYO_POOL`].
pub fn byo_prefixes(scenario: &Scenario) -> Result<Vec<Ipv4Net>, String> {
    let base = u32::from(BYO_POOL.network());
    let end = u32::from(BYO_POOL.broadcast());
    let mut next = base;
    let mut out = Vec::new();
    for p in &scenario.public_ip_prefixes {
        let size = 1u32 << (32 - p.prefix_length);
        let start = next.div_ceil(size) * size;
        if start + size - 1 > end {
            return Err(format!(
                "the BYO prefixes do not fit in {BYO_POOL}; use fewer or longer prefixes"
            ));
        }
        out.push(
            Ipv4Net::new(Ipv4Addr::from(start), p.prefix_length as u8)
                .map_err(|e| e.to_string())?,
        );
        next = start + size;
    }
    Ok(out)
}

/// The emulator seed of a scenario.
pub fn emulator_seed(scenario: &Scenario) -> Result<Value, String> {
    let rg = cloud_resource_group(scenario);
    let mut scale_sets = vec![json!({
        "name": WORKER_VMSS, "resourceGroup": rg, "instances": scenario.workers,
        "subnet": format!("{VNET}/{SUBNET}"),
        "tags": {"aks-managed-poolName": WORKER_POOL},
    })];
    for pool in &scenario.gateway_pools {
        let mut tags = json!({"aks-managed-poolName": pool.name});
        if let Some(size) = pool.prefix_size {
            tags["aks-managed-gatewayIPPrefixSize"] = json!(size.to_string());
        }
        scale_sets.push(json!({
            "name": pool.vmss_name, "resourceGroup": pool.resource_group,
            "instances": pool.instances, "subnet": format!("{VNET}/{SUBNET}"), "tags": tags,
        }));
    }
    let mut prefixes = Vec::new();
    for (p, cidr) in scenario
        .public_ip_prefixes
        .iter()
        .zip(byo_prefixes(scenario)?)
    {
        let id = parse_prefix_id(&p.id)?;
        prefixes.push(json!({"name": id.name, "resourceGroup": id.resource_group,
                             "ipPrefix": cidr.to_string()}));
    }
    let mut seed = json!({
        "subscriptionId": SUBSCRIPTION_ID,
        "tenantId": TENANT_ID,
        "location": LOCATION,
        "resourceGroups": [{"name": NODE_RESOURCE_GROUP}, {"name": rg}],
        "virtualNetworks": [{
            "name": VNET, "resourceGroup": NODE_RESOURCE_GROUP,
            "addressSpace": [VNET_CIDR.to_string()],
            "subnets": [{"name": SUBNET, "addressPrefix": SUBNET_CIDR.to_string()}],
        }],
        "scaleSets": scale_sets,
        "publicIpPrefixes": prefixes,
        "publicIpPools": {
            "prefixes": [MANAGED_PREFIX_POOL.to_string()],
            "addresses": [STANDALONE_IP_POOL.to_string()],
        },
    });
    if scenario.dual_stack {
        // A dual-stack subnet and dual-stack nodes (each NIC has an IPv6 ipConfiguration, as
        // AKS builds them), and a pool for managed IPv6 prefixes.
        let vnet = &mut seed["virtualNetworks"][0];
        vnet["addressSpace"] = json!([VNET_CIDR.to_string(), VNET6_CIDR.to_string()]);
        vnet["subnets"][0]["ipv6AddressPrefix"] = json!(SUBNET6_CIDR.to_string());
        for set in seed["scaleSets"].as_array_mut().into_iter().flatten() {
            set["dualStack"] = json!(true);
        }
        seed["publicIpPools"]["ipv6Prefixes"] = json!([MANAGED_PREFIX6_POOL.to_string()]);
    }
    Ok(seed)
}

/// The operator's cloud config (`azure.json` keys) for an emulator at `arm_url`.
pub fn cloud_config(scenario: &Scenario, arm_url: &str) -> Value {
    json!({
        "cloud": "AzurePublicCloud",
        "tenantId": TENANT_ID,
        "subscriptionId": SUBSCRIPTION_ID,
        "resourceGroup": cloud_resource_group(scenario),
        "location": LOCATION,
        "vnetName": VNET,
        "vnetResourceGroup": NODE_RESOURCE_GROUP,
        "subnetName": SUBNET,
        "useManagedIdentityExtension": true,
        "resourceManagerEndpoint": arm_url,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn scenario(text: &str) -> Scenario {
        Scenario::parse(text, "t").unwrap()
    }

    #[test]
    fn computer_names_are_aks_style() {
        assert_eq!(computer_name("gw-vmss", 0), "gw-vmss000000");
        assert_eq!(computer_name("gw-vmss", 37), "gw-vmss000011");
    }

    #[test]
    fn seed_has_one_scale_set_per_pool_with_aks_tags() {
        let s = scenario(
            "workers: 3\ngatewayPools:\n- {name: gwa, vmssName: gw-a, resourceGroup: rg-x, instances: 2, prefixSize: 30}\n- {name: gwb, vmssName: gw-b, resourceGroup: rg-x, instances: 1}\n",
        );
        let seed = emulator_seed(&s).unwrap();
        let sets = seed["scaleSets"].as_array().unwrap();
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[0]["instances"], 3);
        assert_eq!(sets[1]["tags"]["aks-managed-poolName"], "gwa");
        assert_eq!(sets[1]["tags"]["aks-managed-gatewayIPPrefixSize"], "30");
        assert!(
            sets[2]["tags"]
                .get("aks-managed-gatewayIPPrefixSize")
                .is_none()
        );
        assert_eq!(cloud_resource_group(&s), "rg-x");
        let names: Vec<_> = nodes(&s).into_iter().map(|n| (n.name, n.role)).collect();
        assert_eq!(names.len(), 6);
        assert_eq!(names[3], ("gw-a000000".to_string(), Role::Gateway));
    }

    #[test]
    fn dual_stack_seeds_ipv6_ranges_and_nodes_and_single_stack_none() {
        let text = "workers: 2\ngatewayPools:\n- {name: gwa, vmssName: gw-a, resourceGroup: rg-x, instances: 1}\n";
        let single = emulator_seed(&scenario(text)).unwrap();
        assert!(!single.to_string().contains("fd00:"), "{single}");
        assert!(nodes(&scenario(text)).iter().all(|n| n.pod6_cidr.is_none()));
        let dual = scenario(&format!("{text}dualStack: true\n"));
        let seed = emulator_seed(&dual).unwrap();
        assert_eq!(
            seed["virtualNetworks"][0]["subnets"][0]["ipv6AddressPrefix"],
            "fd00:10:224::/64"
        );
        assert!(
            seed["scaleSets"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["dualStack"] == true)
        );
        assert_eq!(
            seed["publicIpPools"]["ipv6Prefixes"][0],
            "2001:db8:ff00::/48"
        );
        let pods6: Vec<_> = nodes(&dual).iter().map(|n| n.pod6_cidr).collect();
        assert_eq!(
            pods6,
            [
                Some("fd00:10:244::/64".parse().unwrap()),
                Some("fd00:10:244:1::/64".parse().unwrap()),
                None
            ]
        );
        assert_eq!(
            node_ipv6(Ipv4Addr::new(10, 224, 0, 6)).to_string(),
            "fd00:10:224::f:6"
        );
        assert!(SUBNET6_CIDR.contains(&node_ipv6(Ipv4Addr::new(10, 224, 0, 255))));
    }

    #[test]
    fn byo_prefixes_are_aligned_documentation_blocks() {
        let id = |n: &str| {
            format!(
                "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/{n}"
            )
        };
        let s = scenario(&format!(
            "workers: 1\npublicIpPrefixes:\n- {{id: {}, prefixLength: 31}}\n- {{id: {}, prefixLength: 28}}\n",
            id("a"),
            id("b")
        ));
        let got = byo_prefixes(&s).unwrap();
        assert_eq!(got[0].to_string(), "192.0.2.64/31");
        assert_eq!(got[1].to_string(), "192.0.2.80/28");
        let seed = emulator_seed(&s).unwrap();
        assert_eq!(seed["publicIpPrefixes"][1]["name"], "b");
        let many: String = (0..5)
            .map(|i| format!("- {{id: {}, prefixLength: 28}}\n", id(&format!("p{i}"))))
            .collect();
        let s = scenario(&format!("workers: 1\npublicIpPrefixes:\n{many}"));
        assert!(byo_prefixes(&s).unwrap_err().contains("do not fit"));
    }
}
