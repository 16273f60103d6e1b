//! Fixtures for the tests against `egress-azure-emulator`: a seed with a gateway scale set and a
//! VM-pool NIC, an emulator started on 127.0.0.1:0 with auth required, fast client policies, and
//! the load balancer / prefix bodies the operator sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use egress_azure::models::{
    BackendAddressPool, FrontendIpConfiguration, FrontendIpConfigurationProperties, LoadBalancer,
    LoadBalancingRule, LoadBalancingRuleProperties, Probe, ProbeProperties, PublicIpPrefix,
    PublicIpPrefixProperties, Sku, SubResource,
};
use egress_azure::{ArmClient, LroPolicy, ResourceGroupId, RetryPolicy};
use egress_azure_emulator::{Emulator, EmulatorConfig, FaultRule, Seed};
use std::path::Path;
use std::time::Duration;

pub const SEED: &str = r#"
subscriptionId: 00000000-0000-0000-0000-000000000000
tenantId: 00000000-0000-0000-0000-000000000001
location: eastus
resourceGroups:
  - name: rg-egress
virtualNetworks:
  - name: aks-vnet
    resourceGroup: rg-egress
    addressSpace: [10.0.0.0/16]
    subnets:
      - name: aks-subnet
        addressPrefix: 10.0.0.0/24
scaleSets:
  - name: gw-vmss
    resourceGroup: rg-egress
    instances: 2
    tags:
      aks-managed-poolName: gwpool
      aks-managed-gatewayIPPrefixSize: "31"
networkInterfaces:
  - name: gw-nic-0
    resourceGroup: rg-egress
    subnet: aks-vnet/aks-subnet
    tags:
      aks-managed-static-gateway-nic: "true"
      aks-managed-poolName: vmpool
virtualMachines:
  - name: gw-vm-0
    resourceGroup: rg-egress
    networkInterfaces: [gw-nic-0]
    tags:
      aks-managed-poolName: vmpool
publicIpPools:
  prefixes: [203.0.113.0/24]
  addresses: [198.51.100.0/24]
"#;

pub async fn emulator(faults: Vec<FaultRule>) -> Emulator {
    emulator_with(EmulatorConfig {
        faults,
        ..EmulatorConfig::default()
    })
    .await
}

/// The test seed, auth required, 2 polls per operation, plus `cfg`'s faults, forms, page size.
pub async fn emulator_with(cfg: EmulatorConfig) -> Emulator {
    let seed = Seed::from_yaml(SEED, Path::new("test-seed.yaml")).unwrap();
    Emulator::start(EmulatorConfig {
        port: 0,
        seed: Some(seed),
        lro_polls: 2,
        retry_after: 0,
        require_auth: true,
        ..cfg
    })
    .await
    .unwrap()
}

pub fn retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 12,
        initial_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
        budget: Duration::from_secs(20),
    }
}

pub fn lro() -> LroPolicy {
    LroPolicy {
        max_duration: Duration::from_secs(20),
        default_poll_interval: Duration::from_millis(5),
        max_poll_interval: Duration::from_millis(50),
    }
}

pub fn client(emu: &Emulator, retry: RetryPolicy) -> ArmClient {
    ArmClient::builder(emu.arm_url().parse().unwrap())
        .static_token("emulator-token")
        .retry(retry)
        .lro(lro())
        .build()
        .unwrap()
}

pub fn rg(emu: &Emulator) -> ResourceGroupId {
    ResourceGroupId::new(emu.subscription_id(), "rg-egress")
}

/// The LB the operator builds: one frontend in the subnet, a pool, an HTTP probe, a UDP rule.
pub fn gateway_lb(emu: &Emulator, pool: &str, port: u16) -> LoadBalancer {
    let lb_id = rg(emu).load_balancer("kubeegressgateway-ilb");
    let subnet = rg(emu).subnet("aks-vnet", "aks-subnet");
    LoadBalancer {
        location: Some("eastus".into()),
        sku: Some(Sku::standard_regional()),
        properties: egress_azure::models::LoadBalancerProperties {
            frontend_ip_configurations: vec![FrontendIpConfiguration {
                name: Some(pool.into()),
                properties: FrontendIpConfigurationProperties {
                    private_ip_allocation_method: Some("Dynamic".into()),
                    private_ip_address_version: Some("IPv4".into()),
                    subnet: Some(SubResource::new(&subnet)),
                    ..Default::default()
                },
                ..Default::default()
            }],
            backend_address_pools: vec![BackendAddressPool {
                name: Some(pool.into()),
                ..Default::default()
            }],
            probes: vec![Probe {
                name: Some("rule-1".into()),
                properties: ProbeProperties {
                    protocol: Some("Http".into()),
                    port: Some(8082),
                    request_path: Some("/gw/sgc-uid".into()),
                    interval_in_seconds: Some(5),
                    probe_threshold: Some(1),
                    ..Default::default()
                },
                ..Default::default()
            }],
            load_balancing_rules: vec![LoadBalancingRule {
                name: Some("rule-1".into()),
                properties: LoadBalancingRuleProperties {
                    protocol: Some("Udp".into()),
                    frontend_port: Some(port),
                    backend_port: Some(port),
                    enable_floating_ip: Some(true),
                    frontend_ip_configuration: Some(SubResource::new(
                        lb_id.child("frontendIPConfigurations", pool),
                    )),
                    backend_address_pool: Some(SubResource::new(
                        lb_id.child("backendAddressPools", pool),
                    )),
                    probe: Some(SubResource::new(lb_id.child("probes", "rule-1"))),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn prefix(len: u8) -> PublicIpPrefix {
    PublicIpPrefix {
        location: Some("eastus".into()),
        sku: Some(Sku::standard_regional()),
        properties: PublicIpPrefixProperties {
            prefix_length: Some(len),
            public_ip_address_version: Some("IPv4".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn in_prefix(ip: &str, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let mask = u32::MAX
        .checked_shl(32 - len.parse::<u32>().unwrap())
        .unwrap_or(0);
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    let net: std::net::Ipv4Addr = net.parse().unwrap();
    u32::from(ip) & mask == u32::from(net) & mask
}
