//! The production client against `egress-azure-emulator` in-process (127.0.0.1, port 0): every
//! operation in every documented response form (`Azure-AsyncOperation`, `Location`, both, 202
//! with a body, provisioningState polling, final at once) with lists paged by one, each fault kind (429 + Retry-After, 500, dropped connection,
//! slow LRO, failed LRO), a workflow under a 30% 429/500 rate that completes without surfacing
//! errors, and etag conflicts surfacing as `Conflict`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod emulator_support;

use egress_azure::models::{
    NetworkInterfaceIpConfiguration, NetworkInterfaceIpConfigurationProperties, PublicIpAddress,
    PublicIpAddressProperties, Sku, SubResource, VmssIpConfiguration,
    VmssIpConfigurationProperties, VmssPublicIpAddressConfiguration,
    VmssPublicIpAddressConfigurationProperties,
};
use egress_azure::{
    AzureApi, ErrorCategory, LoadBalancers, PublicIpPrefixes, ResourceId, RetryPolicy, ScaleSets,
    Subnets,
};
use egress_azure_emulator::{Emulator, EmulatorConfig, FaultKind, FaultRule};
use emulator_support::{client, emulator, emulator_with, gateway_lb, in_prefix, prefix, retry, rg};
use std::time::Duration;

/// The whole operator workflow through `dyn AzureApi`, ending with everything cleaned up.
async fn workflow(api: &dyn AzureApi, emu: &Emulator) {
    let rg = rg(emu);
    let lb_id = rg.load_balancer("kubeegressgateway-ilb");

    // Subnet, scale set discovery by tag.
    let subnet = api
        .get_subnet(&rg.subnet("aks-vnet", "aks-subnet"))
        .await
        .unwrap();
    assert_eq!(
        subnet.properties.address_prefix.as_deref(),
        Some("10.0.0.0/24")
    );
    let sets = api.list_scale_sets(&rg).await.unwrap();
    let vmss = sets
        .iter()
        .find(|s| s.tag("aks-managed-poolName") == Some("gwpool"))
        .unwrap();
    let vmss_id = ResourceId::parse(vmss.id.as_deref().unwrap()).unwrap();
    let vmss = api.get_scale_set(&vmss_id).await.unwrap();
    let pool = vmss.properties.unique_id.clone().unwrap();

    // Load balancer: absent, then created (Network PUT: Azure-AsyncOperation style).
    assert!(
        api.get_load_balancer(&lb_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let lb = api
        .create_or_update_load_balancer(&lb_id, &gateway_lb(emu, &pool, 6000), None)
        .await
        .unwrap();
    let fe_ip = lb
        .frontend(&pool)
        .unwrap()
        .properties
        .private_ip_address
        .clone()
        .unwrap();
    assert!(in_prefix(&fe_ip, "10.0.0.0/24"), "{fe_ip}");
    assert_eq!(
        lb.properties.provisioning_state.as_deref(),
        Some("Succeeded")
    );

    // Managed prefix.
    let prefix_id = rg.public_ip_prefix("egressgateway-vmconfig-uid");
    // /30: two scale-set instances and one VM-pool NIC draw addresses from it.
    let created = api
        .create_public_ip_prefix(&prefix_id, &prefix(30))
        .await
        .unwrap();
    let cidr = created.properties.ip_prefix.clone().unwrap();
    assert!(cidr.ends_with("/30"), "{cidr}");
    assert_eq!(
        api.get_public_ip_prefix(&prefix_id)
            .await
            .unwrap()
            .properties
            .ip_prefix,
        Some(cidr.clone())
    );

    // Scale set model: add our ipconfig to the primary NIC (Compute PATCH: Location style).
    let mut profile = vmss.network_profile().unwrap().clone();
    let nic = &mut profile.network_interface_configurations[0];
    let primary_subnet = nic.properties.ip_configurations[0]
        .properties
        .subnet
        .clone();
    nic.properties.ip_configurations[0]
        .properties
        .load_balancer_backend_address_pools
        .push(SubResource::new(lb_id.child("backendAddressPools", &pool)));
    nic.properties.ip_configurations.push(VmssIpConfiguration {
        name: Some("egressgateway-vmconfig-uid".into()),
        properties: VmssIpConfigurationProperties {
            primary: Some(false),
            private_ip_address_version: Some("IPv4".into()),
            subnet: primary_subnet,
            public_ip_address_configuration: Some(VmssPublicIpAddressConfiguration {
                name: Some("egressgateway-vmconfig-uid".into()),
                properties: VmssPublicIpAddressConfigurationProperties {
                    public_ip_prefix: Some(SubResource::new(&prefix_id)),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    });
    let updated = api
        .update_scale_set_network_profile(&vmss_id, &profile, vmss.etag.as_deref())
        .await
        .unwrap();
    assert_eq!(
        updated
            .network_profile()
            .unwrap()
            .network_interface_configurations[0]
            .properties
            .ip_configurations
            .len(),
        2
    );

    // Instances follow the model only when updated; then their NIC has a secondary IP.
    let instances = api.list_scale_set_vms(&vmss_id).await.unwrap();
    assert_eq!(instances.len(), 2);
    for inst in &instances {
        let inst_id = ResourceId::parse(inst.id.as_deref().unwrap()).unwrap();
        let mut config = inst
            .properties
            .network_profile_configuration
            .clone()
            .unwrap_or_default();
        config.network_interface_configurations = profile.network_interface_configurations.clone();
        let done = api
            .update_scale_set_vm_network_profile(&inst_id, "eastus", &config, None)
            .await
            .unwrap();
        let nic_id = ResourceId::parse(done.primary_nic_id().unwrap()).unwrap();
        let nic = api
            .get_scale_set_vm_network_interface(&nic_id)
            .await
            .unwrap();
        let secondary = nic.ip_configuration("egressgateway-vmconfig-uid").unwrap();
        assert!(secondary.properties.private_ip_address.is_some());
        assert!(
            nic.primary_ip_configuration()
                .unwrap()
                .properties
                .private_ip_address
                .is_some()
        );
    }

    // VM pool: tagged NIC gets a public IP from the prefix (PUT PIP, PUT NIC).
    let vms = api.list_virtual_machines(&rg).await.unwrap();
    assert!(vms.iter().any(|v| {
        v.tags
            .as_ref()
            .is_some_and(|t| t.get("aks-managed-poolName").map(String::as_str) == Some("vmpool"))
    }));
    let nics = api.list_network_interfaces(&rg).await.unwrap();
    let tagged = nics
        .iter()
        .find(|n| {
            n.tags
                .as_ref()
                .is_some_and(|t| t.contains_key("aks-managed-static-gateway-nic"))
        })
        .unwrap();
    let nic_id = ResourceId::parse(tagged.id.as_deref().unwrap()).unwrap();
    let pip_id = rg.public_ip_address("egressgateway-vmconfig-uid-0123456789abcdef");
    let pip = api
        .create_or_update_public_ip_address(
            &pip_id,
            &PublicIpAddress {
                location: Some("eastus".into()),
                sku: Some(Sku::standard_regional()),
                properties: PublicIpAddressProperties {
                    public_ip_allocation_method: Some("Static".into()),
                    public_ip_address_version: Some("IPv4".into()),
                    public_ip_prefix: Some(SubResource::new(&prefix_id)),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let addr = pip.properties.ip_address.clone().unwrap();
    assert!(in_prefix(&addr, &cidr), "{addr} not in {cidr}");
    let mut nic = api.get_network_interface(&nic_id).await.unwrap();
    let subnet_ref = nic
        .primary_ip_configuration()
        .unwrap()
        .properties
        .subnet
        .clone();
    nic.properties
        .ip_configurations
        .push(NetworkInterfaceIpConfiguration {
            name: Some("egressgateway-vmconfig-uid".into()),
            properties: NetworkInterfaceIpConfigurationProperties {
                primary: Some(false),
                private_ip_address_version: Some("IPv4".into()),
                subnet: subnet_ref,
                public_ip_address: Some(SubResource::new(&pip_id)),
                ..Default::default()
            },
            ..Default::default()
        });
    let nic = api
        .create_or_update_network_interface(&nic_id, &nic, nic.etag.clone().as_deref())
        .await
        .unwrap();
    assert!(
        nic.ip_configuration("egressgateway-vmconfig-uid")
            .unwrap()
            .properties
            .private_ip_address
            .is_some()
    );

    // Cleanup in the original's order: a prefix with public IPs cannot go first.
    let in_use = api.delete_public_ip_prefix(&prefix_id).await.unwrap_err();
    assert_eq!(in_use.code(), "InUsePublicIpPrefixCannotBeDeleted");
    assert_eq!(in_use.category(), ErrorCategory::Permanent);
    let mut nic = nic;
    nic.properties
        .ip_configurations
        .retain(|c| c.name.as_deref() != Some("egressgateway-vmconfig-uid"));
    api.create_or_update_network_interface(&nic_id, &nic, None)
        .await
        .unwrap();
    api.delete_public_ip_address(&pip_id).await.unwrap();
    for inst in &instances {
        let inst_id = ResourceId::parse(inst.id.as_deref().unwrap()).unwrap();
        let config = inst
            .properties
            .network_profile_configuration
            .clone()
            .unwrap_or_default();
        api.update_scale_set_vm_network_profile(&inst_id, "eastus", &config, None)
            .await
            .unwrap();
    }
    api.update_scale_set_network_profile(&vmss_id, vmss.network_profile().unwrap(), None)
        .await
        .unwrap();
    api.delete_public_ip_prefix(&prefix_id).await.unwrap();
    assert!(
        api.get_public_ip_prefix(&prefix_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    api.delete_load_balancer(&lb_id).await.unwrap();
    assert!(
        api.get_load_balancer(&lb_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Deleting again is a no-op, as cleanup must be idempotent.
    api.delete_load_balancer(&lb_id).await.unwrap();
}

fn assert_nothing_leaked(emu: &Emulator) {
    let inv = emu.inventory().to_string().to_ascii_lowercase();
    assert!(!inv.contains("egressgateway-vmconfig-uid"), "leaked: {inv}");
    assert!(!inv.contains("kubeegressgateway-ilb"), "leaked LB: {inv}");
}

#[tokio::test]
async fn every_operation_in_every_response_form_with_paged_lists() {
    use egress_azure_emulator::ResponseForm;
    for form in ResponseForm::ALL {
        // Every operation whose specification documents the form uses it; lists page by 1.
        let emu = emulator_with(EmulatorConfig {
            response_forms: vec![("*".into(), form)],
            page_size: 1,
            ..EmulatorConfig::default()
        })
        .await;
        let c = client(&emu, retry());
        workflow(&c, &emu).await;
        assert_nothing_leaked(&emu);
        let log = emu.request_log();
        let (status, result) = (
            log.count("Operations.GetStatus"),
            log.count("Operations.GetResult"),
        );
        match form {
            ResponseForm::Async | ResponseForm::Both | ResponseForm::Accepted => {
                assert!(status > 0, "{form}: {:?}", log.counts)
            }
            ResponseForm::Location => assert!(result > 0, "{form}: {:?}", log.counts),
            ResponseForm::Done => assert_eq!((status, result), (0, 0), "{form}: {:?}", log.counts),
            ResponseForm::Polled => {}
        }
        // The LRO metric counts polled operations; `done` has nothing to poll.
        let polled = c
            .metrics()
            .lro_count("scale_sets.update_network_profile", "succeeded");
        assert_eq!(polled >= 1, form != ResponseForm::Done, "{form}");
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn workflow_survives_30_percent_injected_429_and_500() {
    let rule = FaultRule::new(FaultKind::Throttle)
        .probability(0.3)
        .retry_after(0);
    let rule = FaultRule {
        kinds: vec![FaultKind::Throttle, FaultKind::ServerError],
        ..rule
    };
    let emu = emulator(vec![rule]).await;
    let c = client(&emu, retry());
    workflow(&c, &emu).await;
    assert_nothing_leaked(&emu);
    let injected = emu.faults().injected();
    assert!(injected >= 10, "only {injected} faults injected");
    let log = emu.request_log();
    assert!(log.total() > 60, "{}", log.total());
    emu.shutdown().await;
}

#[tokio::test]
async fn without_retries_the_injected_faults_surface() {
    let emu = emulator(vec![FaultRule::new(FaultKind::ServerError).method("GET")]).await;
    let err = client(&emu, RetryPolicy::none())
        .get_subnet(&rg(&emu).subnet("aks-vnet", "aks-subnet"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Transient);
    emu.shutdown().await;
}

#[tokio::test]
async fn throttle_server_error_and_dropped_connection_are_absorbed() {
    let subnet_path = "*/subnets/aks-subnet";
    let emu = emulator(vec![
        FaultRule::new(FaultKind::Throttle)
            .path(subnet_path)
            .retry_after(0)
            .count(2),
        FaultRule::new(FaultKind::ServerError)
            .path(subnet_path)
            .count(2),
        FaultRule::new(FaultKind::DropConnection)
            .path(subnet_path)
            .count(1),
    ])
    .await;
    let c = client(&emu, retry());
    let s = c
        .get_subnet(&rg(&emu).subnet("aks-vnet", "aks-subnet"))
        .await
        .unwrap();
    assert_eq!(s.name.as_deref(), Some("aks-subnet"));
    let m = c.metrics();
    assert_eq!(m.throttled("subnets.get"), 2);
    assert_eq!(m.requests("subnets.get", "GET", "500"), 2);
    assert_eq!(m.requests("subnets.get", "GET", "error"), 1);
    assert_eq!(m.retries("subnets.get"), 5);
    assert_eq!(emu.faults().injected(), 5);
    emu.shutdown().await;
}

#[tokio::test]
async fn long_retry_after_surfaces_as_throttled() {
    let emu = emulator(vec![
        FaultRule::new(FaultKind::Throttle)
            .retry_after(120)
            .count(1),
    ])
    .await;
    let err = client(&emu, retry())
        .get_subnet(&rg(&emu).subnet("aks-vnet", "aks-subnet"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    emu.shutdown().await;
}

#[tokio::test]
async fn slow_lro_completes_and_failed_lro_keeps_its_code() {
    let emu = emulator(vec![
        FaultRule::new(FaultKind::SlowLro)
            .path("*/publicIPPrefixes/slow")
            .extra_polls(6),
        FaultRule {
            error_code: Some("PublicIPPrefixAllocationFailed".into()),
            ..FaultRule::new(FaultKind::FailLro).path("*/publicIPPrefixes/broken")
        },
        FaultRule::new(FaultKind::FailLro).path("*/publicIPPrefixes/flaky"),
    ])
    .await;
    let c = client(&emu, retry());
    let rg = rg(&emu);
    let before = emu.request_log().count("Operations.GetStatus");
    let slow = c
        .create_public_ip_prefix(&rg.public_ip_prefix("slow"), &prefix(30))
        .await
        .unwrap();
    assert!(slow.properties.ip_prefix.is_some());
    assert!(emu.request_log().count("Operations.GetStatus") - before >= 8);

    let err = c
        .create_public_ip_prefix(&rg.public_ip_prefix("broken"), &prefix(30))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PublicIPPrefixAllocationFailed");
    assert_eq!(err.category(), ErrorCategory::Permanent);
    let err = c
        .create_public_ip_prefix(&rg.public_ip_prefix("flaky"), &prefix(30))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InternalOperationError");
    assert_eq!(err.category(), ErrorCategory::Transient);
    assert_eq!(
        c.metrics().lro_count("public_ip_prefixes.create", "failed"),
        2
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_are_permanent_with_the_service_code() {
    let emu = emulator(Vec::new()).await;
    let c = client(&emu, retry());
    let err = c
        .create_public_ip_prefix(&rg(&emu).public_ip_prefix("too-big"), &prefix(24))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert!(!err.code().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn stale_etags_surface_as_conflict() {
    let emu = emulator(Vec::new()).await;
    let c = client(&emu, retry());
    let rg = rg(&emu);
    let vmss_id = rg.scale_set("gw-vmss");
    let pool = c
        .get_scale_set(&vmss_id)
        .await
        .unwrap()
        .properties
        .unique_id
        .unwrap();
    let lb_id = rg.load_balancer("kubeegressgateway-ilb");
    c.create_or_update_load_balancer(&lb_id, &gateway_lb(&emu, &pool, 6000), None)
        .await
        .unwrap();

    let mine = c.get_load_balancer(&lb_id).await.unwrap();
    let stale = mine.etag.clone().unwrap();
    // Another writer changes the LB in between.
    c.create_or_update_load_balancer(&lb_id, &gateway_lb(&emu, &pool, 6001), None)
        .await
        .unwrap();
    let err = c
        .create_or_update_load_balancer(&lb_id, &mine, Some(&stale))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Conflict);
    // Re-read and retry with the fresh etag succeeds.
    let fresh = c.get_load_balancer(&lb_id).await.unwrap();
    c.create_or_update_load_balancer(&lb_id, &fresh, fresh.etag.as_deref())
        .await
        .unwrap();

    let vmss = c.get_scale_set(&vmss_id).await.unwrap();
    let err = c
        .update_scale_set_network_profile(
            &vmss_id,
            vmss.network_profile().unwrap(),
            Some("\"not-the-etag\""),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Conflict);
    emu.shutdown().await;
}
