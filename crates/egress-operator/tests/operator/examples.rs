//! The shipped examples become Ready against the emulator seeded with `crates/testing/egress-azure-emulator/seeds/examples.yaml`.

use std::path::PathBuf;

use egress_api::StaticGatewayConfiguration;
use egress_azure::ResourceGroupId;
use egress_azure_emulator::Seed;
use kube::api::PostParams;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_gateway_becomes_ready_with_an_egress_prefix() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seed: Seed = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("../testing/egress-azure-emulator/seeds/examples.yaml"))
            .unwrap(),
    )
    .unwrap();
    let h = Harness::with_seed(seed).await;
    let mut config = h.config();
    config.azure.resource_group = "rg-nodes".into();
    config.azure.load_balancer_id =
        ResourceGroupId::new(SUB, "rg-nodes").load_balancer("kubeegressgateway-ilb");
    config.azure.subnet_id =
        ResourceGroupId::new(SUB, "rg-egress").subnet("aks-vnet", "aks-subnet");
    let op = h.operator_with(config, Default::default()).await;

    let mut names = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root.join("../../examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if !text.contains("kind: StaticGatewayConfiguration") {
            continue;
        }
        let sgc: StaticGatewayConfiguration = serde_saphyr::from_str(&text).unwrap();
        names.push(sgc.metadata.name.clone().unwrap());
        h.sgcs().create(&PostParams::default(), &sgc).await.unwrap();
    }
    assert_eq!(names.len(), 5);
    for n in &names {
        let s = h.ready(n).await;
        let prefix = s.status.unwrap().egress_ip_prefix.unwrap_or_default();
        assert!(!prefix.is_empty(), "{n}");
    }
    let byo = h.ready("gw-byo").await;
    assert_eq!(
        byo.status.unwrap().egress_ip_prefix.as_deref(),
        Some("192.0.2.0/31")
    );
    op.stop().await;
}
