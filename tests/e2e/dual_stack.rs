//! Dual-stack egress (issue 20) on one simulated dual-stack cluster: an annotated pod of an
//! SGC with `ipFamilies: [IPv4, IPv6]` leaves from the SGC's IPv4 prefix and from its IPv6
//! prefix on its first connection of each family; an IPv6 `excludeCidrs` entry bypasses the
//! tunnel; a pod of an IPv4-only SGC and a pod without an SGC leave IPv6 as the cluster's
//! outbound IPv6; deleting the SGC leaves no Azure resource and no gateway-node state.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::{Report, in_prefix};
use egress_sim::scenario::Scenario;
use egress_sim::{seed, services};

use crate::common::{self, seen_from};

fn sgc_row<'a>(report: &'a Report, name: &str) -> &'a egress_sim::report::SgcRow {
    report
        .sgcs
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no SGC {name} in the report"))
}

fn pod_row<'a>(report: &'a Report, name: &str) -> &'a egress_sim::report::PodRow {
    report
        .pods
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no pod {name} in the report"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_pod_leaves_from_both_prefixes_and_ipv6_excludes_bypass() {
    let Some(lab) = common::lab("dual-stack") else {
        return;
    };
    let started = Instant::now();
    let path = common::e2e_scenario("dual-stack.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(90))
        .await
        .unwrap();
    // `measure` opens each pod's first connection of each family to the internet echo.
    let report = egress_sim::cli::measure(&cluster).await.unwrap();
    eprintln!("{}", report.table());
    assert!(report.problems().is_empty(), "{:?}", report.problems());

    let gw6 = sgc_row(&report, "gw6");
    let prefix4 = gw6
        .egress_ip_prefix
        .clone()
        .expect("gw6 has an IPv4 prefix");
    let prefix6 = gw6
        .egress_ipv6_prefix
        .clone()
        .expect("gw6 reports status.egressIpv6Prefix");
    let net6: ipnet::Ipv6Net = prefix6.parse().unwrap();
    assert_eq!(net6.prefix_len(), 127, "a /31 pool gets a /127: {prefix6}");
    assert!(seed::MANAGED_PREFIX6_POOL.contains(&net6), "{prefix6}");
    assert!(
        sgc_row(&report, "gw4").egress_ipv6_prefix.is_none(),
        "an IPv4-only SGC has no IPv6 prefix"
    );

    let a = pod_row(&report, "a");
    let a4 = a.egress_ip.clone().unwrap();
    let a6 = a.egress_ipv6.clone().expect("pod a reached the IPv6 echo");
    assert!(
        in_prefix(&a4, &prefix4),
        "a leaves IPv4 as {a4}, not from {prefix4}"
    );
    assert!(
        in_prefix(&a6, &prefix6),
        "a leaves IPv6 as {a6}, not from {prefix6}"
    );
    let outbound6 = seed::OUTBOUND_IP6.to_string();
    for other in ["b4", "plain"] {
        assert_eq!(
            pod_row(&report, other).egress_ipv6.as_deref(),
            Some(outbound6.as_str()),
            "{other}'s IPv6 is not tunnelled"
        );
    }

    // The excluded /64 is reached over eth0: the edge sees the pod's IPv6 SNATed to the
    // outbound IPv6, not the gateway's.
    assert_eq!(
        seen_from(
            &cluster,
            "a",
            seed::INTERNET_SERVER2_IP6,
            services::RAW_ECHO_PORT
        )
        .await,
        outbound6,
        "2001:db8:3::/64 is in gw6's excludeCidrs"
    );
    eprintln!(
        "[e2e] dual-stack egress checked after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    deletion_leaves_nothing(&cluster).await;
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
    eprintln!(
        "[e2e] dual-stack test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Deleting gw6 (and its pod) removes its Azure resources (IPv6 prefix and ipConfigs
/// included) and every device, address and route of it on the gateway nodes.
async fn deletion_leaves_nothing(cluster: &Cluster) {
    let f = common::sgc_footprint(cluster, "gw6").await;
    let v6: Vec<&String> = f.secondaries.iter().filter(|ip| ip.contains(':')).collect();
    assert_eq!(
        v6.len(),
        2,
        "one IPv6 secondary per gateway node: {:?}",
        f.secondaries
    );
    for g in &f.gateways {
        let state = cluster.node_state(g).unwrap();
        assert!(
            v6.iter().any(|ip| state.contains(ip.as_str())),
            "{g} holds an IPv6 secondary of gw6 before:\n{state}"
        );
    }
    common::delete_and_expect_clean(cluster, "a", &f).await;
}
