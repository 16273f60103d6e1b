//! The key scenarios against the emulator answering in each documented response form (every
//! long-running operation that documents the form uses it; lists page one item at a time): a
//! scale-set gateway provisioned, switched to private and deleted back to the seed, and a VM
//! pool gateway (standalone NICs, public IPs in a prefix) provisioned and deleted back to the
//! seed. The operator is unchanged; only the emulator's answers differ.

use std::path::PathBuf;

use egress_azure_emulator::{EmulatorConfig, ResponseForm, Seed};
use serde_json::json;

use crate::common::*;

async fn harness(form: ResponseForm, seed: Option<Seed>) -> Harness {
    Harness::with_emulator(EmulatorConfig {
        lro_polls: 1,
        seed,
        response_forms: vec![("*".into(), form)],
        page_size: 1,
        ..Default::default()
    })
    .await
}

/// The emulator served `form` where it could: the request log shows the matching polling.
fn assert_form_used(h: &Harness, form: ResponseForm) {
    let log = h.emu.request_log();
    let (status, result) = (
        log.count("Operations.GetStatus"),
        log.count("Operations.GetResult"),
    );
    match form {
        ResponseForm::Location => assert!(result > 0, "{form}: {:?}", log.counts),
        ResponseForm::Done => assert_eq!((status, result), (0, 0), "{form}: {:?}", log.counts),
        ResponseForm::Polled => {}
        _ => assert!(status > 0, "{form}: {:?}", log.counts),
    }
}

async fn scale_set_gateway_lifecycle(form: ResponseForm) {
    let h = harness(form, None).await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("gw", PROFILE).await;
    let st = h.ready("gw").await.status.unwrap();
    let prefix = st.egress_ip_prefix.unwrap();
    assert!(
        prefix.starts_with("203.0.113.") && prefix.ends_with("/31"),
        "{form}: {prefix}"
    );
    let vm_uid = h.vms().get("gw").await.unwrap().metadata.uid.unwrap();
    let ipc = format!("egressgateway-{vm_uid}");
    assert!(h.model_ipconfigs().await.contains(&ipc), "{form}");
    for names in h.instance_ipconfigs().await {
        assert!(names.contains(&ipc), "{form}: {names:?}");
    }

    h.patch_spec(
        "gw",
        json!({"provisionPublicIps": false, "gatewayVmssProfile": {"publicIpPrefixSize": 31}}),
    )
    .await;
    h.until(&format!("{form}: private mode"), || async {
        let s = h.ready("gw").await;
        let p = s.status.clone()?.egress_ip_prefix?;
        (!p.contains('/') && p.split(',').count() == 2).then_some(())
    })
    .await;

    h.delete_sgc("gw").await;
    h.gone("gw").await;
    h.until(&format!("{form}: Azure back to the seed"), || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert_form_used(&h, form);
    op.stop().await;
}

async fn vm_pool_gateway_lifecycle(form: ResponseForm) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seed: Seed = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("../testing/egress-azure-emulator/seeds/vmpool.yaml"))
            .unwrap(),
    )
    .unwrap();
    let h = harness(form, Some(seed)).await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("vmgw", "gatewayNodepoolName: vmpool").await;
    let st = h.ready("vmgw").await.status.unwrap();
    assert!(
        st.egress_ip_prefix.unwrap().starts_with("203.0.113."),
        "{form}"
    );
    let pips = h
        .resource_ids()
        .into_iter()
        .filter(|i| i.contains("/publicipaddresses/"))
        .count();
    assert_eq!(pips, 3, "{form}: one public IP per pool NIC");
    h.delete_sgc("vmgw").await;
    h.gone("vmgw").await;
    h.until(&format!("{form}: Azure back to the seed"), || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert_form_used(&h, form);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_set_gateway_lifecycle_in_every_response_form() {
    for form in ResponseForm::ALL {
        scale_set_gateway_lifecycle(form).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_pool_gateway_lifecycle_in_every_response_form() {
    for form in ResponseForm::ALL {
        vm_pool_gateway_lifecycle(form).await;
    }
}
