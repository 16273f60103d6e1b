//! AKS "VirtualMachines" gateway pools (standalone NICs pre-created by AKS) against the emulator
//! seeded with `crates/testing/egress-azure-emulator/seeds/vmpool.yaml`: public mode (a public IP per
//! NIC, created once), BYO → private mode (every NIC's secondary IP, unchanged; the public IPs
//! in the BYO prefix deleted), batching of two gateways into one
//! write per NIC, a BYO prefix shared by two gateways refused, and deletion back to the seed
//! (public IPs, also in a BYO prefix, ipConfigs and backend pool membership).

use std::path::PathBuf;

use egress_azure::{NetworkInterfaces, ResourceGroupId};
use egress_azure_emulator::Seed;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::common::*;

const VMPOOL: &str = "gatewayNodepoolName: vmpool";
pub const NICS: [&str; 3] = [
    "aks-vmpool-12345678-nic-0",
    "aks-vmpool-12345678-nic-1",
    "aks-vmpool-12345678-nic-2",
];
/// v3 UUID of `vmpool` in the original's namespace (computed with Python's `uuid.uuid3`).
const POOL_UID: &str = "df1d0b79-1503-3d2d-84a9-a9c1321145bc";

/// The emulator inventory of `seeds/vmpool.yaml`.
pub fn vmpool_seed() -> Seed {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("../testing/egress-azure-emulator/seeds/vmpool.yaml"))
            .unwrap(),
    )
    .unwrap()
}

async fn harness() -> Harness {
    Harness::with_seed(vmpool_seed()).await
}

/// Per NIC of the resource group: ipConfig names with their backend pools and public IP.
async fn nic_state(h: &Harness) -> Vec<(String, Vec<(String, Vec<String>, Option<String>)>)> {
    let nics = h
        .arm
        .list_network_interfaces(&ResourceGroupId::new(SUB, "rg-egress"))
        .await
        .unwrap();
    let mut out: Vec<_> = nics
        .into_iter()
        .map(|n| {
            let cfgs = n
                .properties
                .ip_configurations
                .iter()
                .map(|c| {
                    (
                        c.name.clone().unwrap(),
                        c.properties
                            .load_balancer_backend_address_pools
                            .iter()
                            .map(|p| p.id.to_ascii_lowercase())
                            .collect(),
                        c.properties
                            .public_ip_address
                            .as_ref()
                            .map(|p| p.id.to_ascii_lowercase()),
                    )
                })
                .collect();
            (n.name.unwrap(), cfgs)
        })
        .collect();
    out.sort();
    out
}

/// Private IP of ipConfig `ipc` on each pool NIC.
async fn secondary_ips(h: &Harness, ipc: &str) -> Vec<String> {
    let mut ips = Vec::new();
    for nic in NICS {
        let id = ResourceGroupId::new(SUB, "rg-egress").network_interface(nic);
        let n = h.arm.get_network_interface(&id).await.unwrap();
        let c = n
            .ip_configuration(ipc)
            .expect("gateway ipConfig on every pool NIC");
        ips.push(c.properties.private_ip_address.clone().unwrap());
    }
    ips
}

fn public_ip_ids(h: &Harness) -> Vec<String> {
    h.resource_ids()
        .into_iter()
        .filter(|i| i.contains("/publicipaddresses/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_pool_gateway_gets_a_public_ip_per_nic_once_and_deletion_restores_the_seed() {
    let h = harness().await;
    let before = h.resource_ids();
    let nics_before = nic_state(&h).await;
    let op = h.operator().await;
    h.create_sgc("vmgw", VMPOOL).await;
    let sgc = h.ready("vmgw").await;
    let st = sgc.status.unwrap();
    let prefix = st.egress_ip_prefix.unwrap();
    assert!(
        prefix.starts_with("203.0.113.") && prefix.ends_with("/30"),
        "{prefix}"
    );
    assert_eq!(st.gateway_server_profile.unwrap().port, Some(6000));
    let vmc = h.vms().get("vmgw").await.unwrap();
    let vm_uid = vmc.metadata.uid.clone().unwrap();
    let ipc = format!("egressgateway-{vm_uid}");
    // Every NIC of the pool (also the one reserved for a VM not created yet); node name = NIC.
    let profiles = vmc.status.unwrap().gateway_vm_profiles.unwrap();
    let names: Vec<&str> = profiles
        .iter()
        .map(|p| p.node_name.as_deref().unwrap())
        .collect();
    assert_eq!(names, NICS);
    let secondaries = secondary_ips(&h, &ipc).await;
    for (p, ip) in profiles.iter().zip(&secondaries) {
        assert_eq!(p.secondary_ip.as_ref(), Some(ip));
        assert!(p.primary_ip.as_deref().unwrap().starts_with("10.0.0."));
    }

    // One public IP per NIC, named as the original, from the managed prefix, attached.
    let pips = public_ip_ids(&h);
    assert_eq!(pips.len(), 3, "{pips:?}");
    let pool_id = settings()
        .load_balancer_id
        .child("backendAddressPools", POOL_UID)
        .to_string()
        .to_ascii_lowercase();
    for (nic, cfgs) in nic_state(&h).await {
        let ours = NICS.contains(&nic.as_str());
        let gw = cfgs.iter().find(|c| c.0 == ipc);
        assert_eq!(gw.is_some(), ours, "{nic}: {cfgs:?}");
        assert_eq!(cfgs[0].1.contains(&pool_id), ours, "{nic}: {cfgs:?}");
        if let Some((_, _, pip)) = gw {
            let pip = pip.clone().unwrap();
            assert!(pip.starts_with(&format!("/subscriptions/{SUB}/resourcegroups/rg-egress/providers/microsoft.network/publicipaddresses/egressgateway-{vm_uid}-")));
            assert!(pips.contains(&pip));
        }
    }
    let pip = h.resource(&pips[0]).unwrap();
    assert!(
        pip["properties"]["publicIPPrefix"]["id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("publicIPPrefixes/egressgateway-{vm_uid}"))
    );
    let lb = h.load_balancer().await.unwrap();
    assert_eq!(
        lb.properties.backend_address_pools[0].name.as_deref(),
        Some(POOL_UID)
    );

    // Another pass (a gateway node event) writes nothing: public IPs are not re-PUT.
    let writes = |h: &Harness| {
        let log = h.emu.request_log();
        (
            log.count("PublicIPAddresses.CreateOrUpdate"),
            log.count("NetworkInterfaces.CreateOrUpdate"),
            log.count("LoadBalancers.CreateOrUpdate"),
        )
    };
    assert_eq!(writes(&h), (3, 3, 1));
    let passes = op.metrics.reconciles("gateway-pool", "success");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "aks-vmpool-12345678-vm-0",
        "labels": {"kubernetes.azure.com/mode": "gateway", "kubernetes.azure.com/agentpool": "vmpool"}}}))
    .unwrap();
    Api::<Node>::all(h.client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    h.until("another pool pass", || async {
        (op.metrics.reconciles("gateway-pool", "success") > passes).then_some(())
    })
    .await;
    assert_eq!(writes(&h), (3, 3, 1));

    h.delete_sgc("vmgw").await;
    h.gone("vmgw").await;
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert_eq!(nic_state(&h).await, nics_before);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_pool_gateway_switched_to_private_egresses_from_every_nics_secondary_ip() {
    let h = harness().await;
    let before = h.resource_ids();
    let nics_before = nic_state(&h).await;
    let op = h.operator().await;
    let byo = ResourceGroupId::new(SUB, "rg-egress").public_ip_prefix("byo-prefix");
    h.create_sgc("vmpriv", &format!("{VMPOOL}, publicIpPrefixId: \"{byo}\""))
        .await;
    h.ready("vmpriv").await;
    let vm_uid = h.vms().get("vmpriv").await.unwrap().metadata.uid.unwrap();
    let ipc = format!("egressgateway-{vm_uid}");
    let public_phase = secondary_ips(&h, &ipc).await;
    assert_eq!(public_ip_ids(&h).len(), 3);

    // Private mode: the public IPs we made in the BYO prefix go, the private IPs stay.
    h.patch_spec(
        "vmpriv",
        json!({"provisionPublicIps": false, "publicIpPrefixId": null}),
    )
    .await;
    let sgc = h
        .until("private-mode status", || async {
            let s = h.ready("vmpriv").await;
            let p = s.status.clone()?.egress_ip_prefix?;
            (!p.contains('/')).then_some(s)
        })
        .await;
    let secondaries = secondary_ips(&h, &ipc).await;
    assert_eq!(secondaries, public_phase, "secondary IPs are stable");
    assert_eq!(
        sgc.status.unwrap().egress_ip_prefix.unwrap(),
        secondaries.join(",")
    );
    h.until("the BYO prefix's public IPs to be deleted", || async {
        public_ip_ids(&h).is_empty().then_some(())
    })
    .await;
    assert!(h.resource("publicIPPrefixes/byo-prefix").is_some());

    h.delete_sgc("vmpriv").await;
    h.gone("vmpriv").await;
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert_eq!(nic_state(&h).await, nics_before);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vm_pool_gateways_cost_one_write_per_nic_and_byo_public_ips_are_not_leaked() {
    let h = harness().await;
    let before = h.resource_ids();
    let nics_before = nic_state(&h).await;
    let op = h.operator().await;
    let byo = ResourceGroupId::new(SUB, "rg-egress").public_ip_prefix("byo-prefix");
    let byo_spec = format!("{VMPOOL}, publicIpPrefixId: \"{byo}\"");
    h.create_sgc("vm-a", VMPOOL).await;
    h.create_sgc("vm-b", &byo_spec).await;
    h.ready("vm-a").await;
    let b = h.ready("vm-b").await;
    assert_eq!(
        b.status.unwrap().egress_ip_prefix.as_deref(),
        Some("192.0.2.0/30")
    );
    let log = h.emu.request_log();
    let counts = (
        log.count("NetworkInterfaces.CreateOrUpdate"),
        log.count("LoadBalancers.CreateOrUpdate"),
        log.count("PublicIPAddresses.CreateOrUpdate"),
    );
    eprintln!("2 SGCs on a 3-NIC VM pool: NIC writes, LB writes, public IPs = {counts:?}");
    assert_eq!(counts, (3, 1, 6), "one write per NIC for the batch");
    assert_eq!(public_ip_ids(&h).len(), 6);
    let in_byo =
        h.resource("publicIPPrefixes/byo-prefix").unwrap()["properties"]["publicIPAddresses"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(in_byo, 3);

    // A second gateway on the same BYO prefix would need the same public IPs: refused.
    h.create_sgc("vm-c", &byo_spec).await;
    let (status, _, message) = h
        .until("vm-c to be refused", || async {
            h.condition("vm-c", "PrefixReady")
                .await
                .filter(|c| c.1 == "PrefixShared")
        })
        .await;
    assert_eq!(status, "False");
    assert!(message.contains("default/vm-b"), "{message}");

    let log = h.emu.request_log();
    let nic_writes = log.count("NetworkInterfaces.CreateOrUpdate");
    for n in ["vm-a", "vm-b", "vm-c"] {
        h.delete_sgc(n).await;
    }
    for n in ["vm-a", "vm-b", "vm-c"] {
        h.gone(n).await;
    }
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert_eq!(nic_state(&h).await, nics_before);
    let removed = h
        .emu
        .request_log()
        .count("NetworkInterfaces.CreateOrUpdate")
        - nic_writes;
    eprintln!("deleting them: NIC writes = {removed}");
    assert_eq!(removed, 3, "one write per NIC for the batch");
    op.stop().await;
}
