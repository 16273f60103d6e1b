//! The original's e2e scenarios (reference §8.2) on one simulated cluster, then the lifecycle
//! checks that need SGCs of their own: deleting an SGC leaves no Azure resource and no node
//! state, and an operator crashed mid-provisioning converges after its restart without leaked
//! or duplicated Azure resources. One cluster serves every check (a cluster start costs ~10 s
//! of a 2-core CI machine); the checks touch disjoint SGCs and pods.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::scenario::Scenario;
use egress_sim::{seed, services};
use serde_json::{Value, json};

use crate::common::{self, eventually_async, pod, pod_doc, seen_from, sgc, sgc_doc};

fn status_prefix(report: &egress_sim::report::Report, name: &str) -> String {
    report
        .sgcs
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.egress_ip_prefix.clone())
        .unwrap_or_else(|| panic!("SGC {name} has no prefix"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_scenarios_sgc_deletion_and_operator_restart() {
    let Some(lab) = common::lab("features") else {
        return;
    };
    let started = Instant::now();
    let path = common::e2e_scenario("features.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let mut cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(90))
        .await
        .unwrap();
    let report = egress_sim::cli::measure(&cluster).await.unwrap();
    assert!(
        report.problems().is_empty(),
        "{:?}\n{}",
        report.problems(),
        report.table()
    );
    let egress = |name: &str| {
        report
            .pods
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.egress_ip.clone())
            .unwrap()
    };
    let outbound = seed::OUTBOUND_IP.to_string();
    let (pa, pb, pbyo) = (
        status_prefix(&report, "gw-a"),
        status_prefix(&report, "gw-b"),
        status_prefix(&report, "gw-byo"),
    );

    // 1. An annotated pod leaves from its prefix, a pod without annotation does not.
    assert!(in_prefix(&egress("a"), &pa), "a: {} vs {pa}", egress("a"));
    assert_eq!(egress("plain"), outbound);
    // 5. Two SGCs, two prefixes: each pod uses its own.
    assert_ne!(pa, pb);
    assert!(in_prefix(&egress("b"), &pb) && !in_prefix(&egress("b"), &pa));
    assert!(!in_prefix(&egress("a"), &pb));
    // 2. The BYO prefix is used verbatim.
    let byo = seed::byo_prefixes(&cluster.scenario).unwrap()[0].to_string();
    assert_eq!(pbyo, byo);
    assert!(in_prefix(&egress("byo"), &byo));

    // 4. excludeCidrs: the peered network is reached over eth0 (the pod's own address, no
    // tunnel), while the internet still sees the prefix.
    let peered = seed::PEERED_SERVER_IP;
    let a_ip = pod(&cluster, "a").ip.unwrap();
    assert_eq!(
        seen_from(&cluster, "a", peered, services::RAW_ECHO_PORT).await,
        a_ip
    );

    // 6. azureNetworking + private IPs: the status lists the gateways' private IPs; only the
    // SGC's CIDRs go through the gateway (the peered host sees one of those IPs), the
    // internet sees the outbound IP.
    let private = status_prefix(&report, "gw-private");
    let private_ips: Vec<&str> = private.split(',').collect();
    assert_eq!(private_ips.len(), 2, "one per gateway node: {private}");
    for ip in &private_ips {
        assert!(in_prefix(ip, &seed::SUBNET_CIDR.to_string()), "{private}");
    }
    let via_gateway = seen_from(&cluster, "private", peered, services::RAW_ECHO_PORT).await;
    assert!(
        private_ips.contains(&via_gateway.as_str()),
        "{via_gateway} not in {private}"
    );
    assert_eq!(egress("private"), outbound);
    assert!(!in_prefix(&egress("private"), &private));

    // 3. Ingress to an annotated pod still works (the reply goes back over eth0, not wg0).
    let server = pod(&cluster, "a-server");
    let listener = services::bind_in(
        server.netns.as_deref().unwrap(),
        SocketAddr::from(([0, 0, 0, 0], 8080)),
    )
    .unwrap();
    let mut servers = tokio::task::JoinSet::new();
    services::spawn_raw_echo(&mut servers, listener);
    let server_ip: std::net::Ipv4Addr = server.ip.unwrap().parse().unwrap();
    assert_eq!(
        seen_from(&cluster, "plain", server_ip, 8080).await,
        pod(&cluster, "plain").ip.unwrap(),
        "the annotated pod's server sees the client pod's own address"
    );
    servers.abort_all();
    eprintln!(
        "[e2e] original scenarios passed after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    sgc_deletion_leaves_nothing(&cluster).await;
    operator_restart_mid_provisioning(&mut cluster).await;

    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
    eprintln!(
        "[e2e] features test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

async fn sgc_deletion_leaves_nothing(cluster: &Cluster) {
    let t = Instant::now();
    let f = common::sgc_footprint(cluster, "gw-b").await;
    let kept_port =
        sgc(cluster, "gw-a").await.unwrap().data["status"]["gatewayServerProfile"]["port"]
            .as_u64()
            .unwrap();
    assert_eq!(f.secondaries.len(), 2, "one secondary IP per gateway node");
    let gateways = &f.gateways;
    for g in gateways {
        let state = cluster.node_state(g).unwrap();
        assert!(
            state.contains(&format!("wg-{}", f.port)),
            "{g} carries gw-b before:\n{state}"
        );
    }
    common::delete_and_expect_clean(cluster, "b", &f).await;
    for g in gateways {
        let state = cluster.node_state(g).unwrap();
        assert!(
            state.contains(&format!("wg-{kept_port}")),
            "other SGCs stay on {g}"
        );
    }
    let a_prefix = sgc(cluster, "gw-a").await.unwrap().data["status"]["egressIpPrefix"]
        .as_str()
        .unwrap()
        .to_string();
    let a_seen = seen_from(
        cluster,
        "a",
        seed::INTERNET_SERVER_IP,
        services::RAW_ECHO_PORT,
    )
    .await;
    assert!(in_prefix(&a_seen, &a_prefix), "gw-a still works");
    eprintln!(
        "[e2e] SGC deletion clean (Azure and nodes) after {:.1}s",
        t.elapsed().as_secs_f64()
    );
}

fn resource_ids(inventory: &Value) -> BTreeSet<String> {
    inventory["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn operator_restart_mid_provisioning(cluster: &mut Cluster) {
    let t = Instant::now();
    let before = resource_ids(&cluster.emulator_get("/admin/inventory").await.unwrap());
    // The first instance update answers 429 with Retry-After 5 s: the operator has created
    // the prefix and LB rule and is waiting to attach the IP configurations.
    cluster
        .emulator_post(
            "/admin/faults",
            &json!({"kinds": ["429"], "method": "PUT", "path": "*/virtualMachines/*",
                "count": 1, "retryAfter": 5}),
        )
        .await
        .unwrap();
    let mut doc = sgc_doc("gw-c");
    doc["spec"] = json!({"gatewayVmssProfile": {"vmssResourceGroup": "rg-nodes",
        "vmssName": "gw-vmss", "publicIpPrefixSize": 31}, "provisionPublicIps": true});
    egress_sim::k8s::apply(&cluster.client, &doc).await.unwrap();
    eventually_async(
        "the operator to hit the throttled instance update",
        Duration::from_secs(60),
        || async {
            let log = cluster.emulator_get("/admin/requests").await.unwrap();
            log["entries"].as_array().unwrap().iter().any(|e| {
                e["status"] == 429 && e["path"].as_str().unwrap().contains("/virtualMachines/")
            })
        },
    )
    .await;
    let uids = common::sgc_uids(cluster, "gw-c").await;
    let mentions = |text: &str| uids.iter().any(|u| text.contains(u.as_str()));
    assert!(
        !egress_sim::report::sgcs(&cluster.client)
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == "gw-c" && s.ready),
        "gw-c must still be provisioning when the operator dies"
    );
    cluster.crash_process("egress-operator").unwrap();
    cluster.restart_process("egress-operator").unwrap();
    eventually_async(
        "gw-c ready after the operator restart",
        Duration::from_secs(90),
        || async {
            egress_sim::report::sgcs(&cluster.client)
                .await
                .unwrap_or_default()
                .iter()
                .any(|s| s.name == "gw-c" && s.ready)
        },
    )
    .await;
    egress_sim::k8s::apply(&cluster.client, &pod_doc("c", "gw-c"))
        .await
        .unwrap();
    common::eventually("pod c ready", Duration::from_secs(60), || {
        cluster
            .pods()
            .get(&("e2e".into(), "c".into()))
            .is_some_and(|p| p.ip.is_some())
    })
    .await;
    let prefix = sgc(cluster, "gw-c").await.unwrap().data["status"]["egressIpPrefix"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = seen_from(
        cluster,
        "c",
        seed::INTERNET_SERVER_IP,
        services::RAW_ECHO_PORT,
    )
    .await;
    assert!(in_prefix(&seen, &prefix), "{seen} not in {prefix}");

    let inventory = cluster.emulator_get("/admin/inventory").await.unwrap();
    let added: Vec<String> = resource_ids(&inventory)
        .difference(&before)
        .cloned()
        .collect();
    assert!(
        added.iter().all(|id| mentions(id)),
        "only gw-c's resources are new: {added:#?}"
    );
    let count = |kind: &str| added.iter().filter(|id| id.contains(kind)).count();
    assert_eq!(count("/publicIPPrefixes/"), 1, "{added:#?}");
    assert_eq!(
        count("/publicIPAddresses/"),
        2,
        "one per gateway node: {added:#?}"
    );
    let lbmap = cluster.emulator_get("/admin/lbmap").await.unwrap();
    let rules: Vec<&Value> = lbmap["loadBalancers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|lb| lb["rules"].as_array().unwrap())
        .filter(|r| mentions(&r.to_string()))
        .collect();
    assert_eq!(rules.len(), 1, "one LB rule: {rules:#?}");
    let ipconfigs: Vec<&Value> = inventory["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["id"]
                .as_str()
                .unwrap()
                .ends_with("/networkInterfaces/gw-vmss")
        })
        .flat_map(|nic| nic["properties"]["ipConfigurations"].as_array().unwrap())
        .filter(|c| mentions(c["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ipconfigs.len(),
        2,
        "one ipConfiguration per gateway NIC: {ipconfigs:#?}"
    );
    assert_eq!(
        inventory["pendingOperations"], 0,
        "no operation left behind"
    );
    eprintln!(
        "[e2e] operator restart mid-provisioning converged after {:.1}s",
        t.elapsed().as_secs_f64()
    );
}
