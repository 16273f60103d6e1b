//! Privileged tests of the data plane's IPv6 side (issue 20), in throwaway namespaces: the
//! netlink executor against the real kernel (IPv6 addresses, routes and sysctls).
//! Run as root; they print SKIPPED and pass otherwise (and fail under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use egress_dataplane::control::{LinkControl, SysctlControl};
use egress_dataplane::exec::ProcSysctl;
use egress_dataplane::spec::{MAIN_TABLE, NextHop, SysctlKey};
use egress_dataplane::{AddressSpec, RouteSpec};
use egress_testkit::{Lab, ip_out, name, privileged};

fn v6route(destination: &str, device: &str, next_hop: NextHop, table: u32) -> RouteSpec {
    RouteSpec {
        table,
        destination: destination.parse().unwrap(),
        device: name(device),
        next_hop,
    }
}

#[tokio::test]
async fn ipv6_addresses_routes_and_forwarding_round_trip_through_the_kernel() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dp6");
    let a_name = lab.netns_name("a");
    egress_dataplane::netns::create_netns(&a_name).unwrap();
    let a = egress_dataplane::NetnsRef::Named(a_name.clone());
    let b = lab.netns("b").await;
    lab.wire((&a, "v6a", "fd00::1/64"), (&b, "v6b", "fd00::2/64"))
        .await;
    // A /128 as the gateway puts its secondary IPv6 on host0, added twice (exists = ok).
    let secondary = AddressSpec::plain("fd00:1::10/128".parse().unwrap());
    for _ in 0..2 {
        lab.links
            .add_address(&a, &name("v6a"), &secondary)
            .await
            .unwrap();
    }
    // Added without duplicate address detection: usable at once, never "tentative".
    let shown = ip_out(&["-n", a_name.as_str(), "-6", "addr", "show", "dev", "v6a"]);
    let ours: Vec<&str> = shown.lines().filter(|l| l.contains("fd00")).collect();
    assert_eq!(ours.len(), 2, "{shown}");
    assert!(
        ours.iter()
            .all(|l| l.contains("nodad") && !l.contains("tentative")),
        "{shown}"
    );

    let wanted = [
        v6route("2001:db8::5/128", "v6a", NextHop::OnLink, MAIN_TABLE),
        v6route(
            "2001:db8:1::/48",
            "v6a",
            NextHop::Gateway(IpAddr::V6("fd00::2".parse().unwrap())),
            MAIN_TABLE,
        ),
        v6route(
            "::/0",
            "v6a",
            NextHop::Gateway(IpAddr::V6("fe80::1".parse().unwrap())),
            100,
        ),
    ];
    for route in &wanted {
        // Replace semantics: programming the same route twice is not an error.
        lab.links.add_route(&a, route).await.unwrap();
        lab.links.add_route(&a, route).await.unwrap();
    }
    let observed = lab.links.observe(&a).await.unwrap();
    for route in &wanted {
        assert!(
            observed.ipv6_routes.contains(route),
            "{route} missing from {:#?}",
            observed.ipv6_routes
        );
    }
    // The kernel's own prefix route is observed; its link-local and multicast ones are not,
    // and no IPv6 route lands among the IPv4 ones.
    assert!(
        observed
            .ipv6_routes
            .contains(&v6route("fd00::/64", "v6a", NextHop::OnLink, MAIN_TABLE)),
        "{:#?}",
        observed.ipv6_routes
    );
    assert!(
        observed
            .ipv6_routes
            .iter()
            .all(|r| !r.destination.addr().to_string().starts_with("fe80")
                && !r.destination.addr().to_string().starts_with("ff")),
        "{:#?}",
        observed.ipv6_routes
    );
    assert!(
        observed
            .routes
            .iter()
            .all(|r| r.destination.addr().is_ipv4()),
        "{:#?}",
        observed.routes
    );
    let link = &observed.links[&name("v6a")];
    assert!(link.addresses.contains(&secondary), "{:#?}", link.addresses);

    for route in &wanted {
        lab.links.del_route(&a, route).await.unwrap();
        // Deleting what is gone is success.
        lab.links.del_route(&a, route).await.unwrap();
    }
    lab.links
        .del_address(&a, &name("v6a"), &secondary)
        .await
        .unwrap();
    let after = lab.links.observe(&a).await.unwrap();
    for route in &wanted {
        assert!(!after.ipv6_routes.contains(route), "{route} still there");
    }
    assert!(!after.links[&name("v6a")].addresses.contains(&secondary));

    let key = SysctlKey::ipv6_forwarding();
    assert_eq!(
        ProcSysctl.read(&a, &key).await.unwrap().as_deref(),
        Some("0")
    );
    ProcSysctl.write(&a, &key, "1").await.unwrap();
    assert_eq!(
        ProcSysctl.read(&a, &key).await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        ProcSysctl.read(&b, &key).await.unwrap().as_deref(),
        Some("0"),
        "per namespace"
    );
}
