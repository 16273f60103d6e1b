#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

fn key(i: usize) -> String {
    // 44 characters, like a real base64 WireGuard key.
    format!("{i:0>43}=")
}

fn pe(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new(ns, name)
}

fn book_with(n: usize) -> StatusBook {
    let book = StatusBook::default();
    let gateways = [(pe("team-payments", "gw-pool"), "wg-6000".to_string())].into();
    let peers = (0..n)
        .map(|i| {
            // Names as a Deployment's pods get them.
            (
                pe("team-payments", &format!("payments-api-7d9c8b6f5-{i:05x}")),
                ("wg-6000".to_string(), key(i)),
            )
        })
        .collect();
    book.replace(gateways, peers);
    book
}

#[test]
fn ten_thousand_peers_fit_one_object_within_the_budget() {
    let book = book_with(10_000);
    let at = SystemTime::now();
    let sampled = Instant::now();
    book.observe_device("wg-6000", (0..10_000).map(|i| (key(i), Some(at))), sampled);
    let limits = Limits {
        max_peers: 1000,
        max_bytes: 1_000_000,
    };
    let (spec, total, _) = book.document(limits);
    let bytes = serde_json::to_vec(&spec).unwrap().len();
    eprintln!("GatewayStatus spec with 10,000 peers (1,000 in the original list): {bytes} bytes");
    assert_eq!(total, 10_000);
    let g = &spec.gateways.as_ref().unwrap()[0];
    assert_eq!(g.peers_total, 10_000);
    assert_eq!(g.peers.len(), 10_000, "every peer listed at 10,000");
    assert!(g.peers.iter().all(|p| p.handshake.is_some() && !p.missing));
    assert!(bytes <= 1_000_000, "{bytes}");
    assert_eq!(spec.ready_peer_configurations.unwrap().len(), 1000);
}

#[test]
fn the_compact_list_is_cut_at_the_byte_budget_and_keeps_the_count() {
    let book = book_with(2_000);
    let limits = Limits {
        max_peers: 10,
        max_bytes: 40_000,
    };
    let (spec, _, _) = book.document(limits);
    let bytes = serde_json::to_vec(&spec).unwrap().len();
    let g = &spec.gateways.as_ref().unwrap()[0];
    assert_eq!(g.peers_total, 2_000);
    assert!(
        g.peers.len() < 2_000 && !g.peers.is_empty(),
        "{}",
        g.peers.len()
    );
    // The heartbeat fields still fit.
    assert!(bytes + 128 <= 40_000, "{bytes}");
}

#[test]
fn a_peer_the_device_lacks_is_missing_but_not_one_set_after_the_sample() {
    let book = book_with(3);
    let before = Instant::now();
    std::thread::sleep(Duration::from_millis(2));
    // Set after the sample started: the sample cannot have seen it.
    book.set_peer(
        &pe("team-payments", "late"),
        Some(("wg-6000".into(), key(99))),
    );
    let v = book.version();
    book.observe_device("wg-6000", [(key(0), None), (key(1), None)], before);
    let missing: Vec<String> = book.missing().into_iter().map(|k| k.name).collect();
    assert_eq!(missing, ["payments-api-7d9c8b6f5-00002"]);
    assert!(book.version() > v, "a peer going missing is written soon");
    // Coming back clears it; a handshake time that merely moves on does not count as a change.
    let t = SystemTime::now();
    let all = || (0..3).chain([99]);
    book.observe_device("wg-6000", all().map(|i| (key(i), Some(t))), Instant::now());
    assert!(book.missing().is_empty());
    let v = book.version();
    let later = t + Duration::from_secs(120);
    book.observe_device(
        "wg-6000",
        all().map(|i| (key(i), Some(later))),
        Instant::now(),
    );
    assert_eq!(book.version(), v);
    let (spec, _, _) = book.document(Limits {
        max_peers: 0,
        max_bytes: usize::MAX,
    });
    let secs = i64::try_from(later.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
    assert_eq!(spec.gateways.unwrap()[0].peers[0].handshake, Some(secs));
}

#[test]
fn refusals_are_listed_capped_and_forgotten() {
    let book = StatusBook::default();
    for i in 0..150 {
        book.set_refused(
            &pe("ns", &format!("p{i:03}")),
            Some(("ip_taken", &"x".repeat(400))),
        );
    }
    let (spec, _, _) = book.document(Limits {
        max_peers: 0,
        max_bytes: usize::MAX,
    });
    let refused = spec.refused.unwrap();
    assert_eq!(refused.len(), MAX_REFUSED);
    assert_eq!(spec.refused_total, Some(150));
    assert_eq!(refused[0].message.len(), 256);
    book.retain_refused(|k| k.name == "p000");
    book.set_refused(&pe("ns", "p000"), None);
    let (spec, _, _) = book.document(Limits {
        max_peers: 0,
        max_bytes: usize::MAX,
    });
    assert!(spec.refused.is_none() && spec.refused_total.is_none());
}

#[test]
fn unchanged_content_is_not_a_change() {
    let book = book_with(5);
    let v = book.version();
    let gateways = book.gateways();
    let peers = (0..5)
        .map(|i| {
            (
                pe("team-payments", &format!("payments-api-7d9c8b6f5-{i:05x}")),
                ("wg-6000".to_string(), key(i)),
            )
        })
        .collect();
    book.replace(gateways, peers);
    book.set_egress_ips(Vec::new());
    assert_eq!(book.version(), v);
    book.set_egress_ips(vec![EgressIp {
        private_ip: "10.0.1.5".into(),
        public_ip: Some("203.0.113.0".into()),
    }]);
    assert_eq!(book.version(), v + 1);
}

fn drift_record(i: usize) -> Drift {
    Drift {
        kind: "peer".into(),
        change: "missing".into(),
        pod_endpoint: Some(format!("team-payments/payments-api-7d9c8b6f5-{i:05x}")),
        interface_name: Some("wg-6000".into()),
        repair: format!(
            "wireguard wg-6000 in ns-static-egress-gateway: set peer {} {}",
            key(i),
            "x".repeat(400)
        ),
        detected_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ),
        repaired: true,
        error: None,
    }
}

#[test]
fn drift_keeps_the_latest_records_and_the_total_and_clears_restored_peers() {
    let book = book_with(3);
    book.observe_device("wg-6000", [(key(0), None), (key(1), None)], Instant::now());
    let lost = pe("team-payments", "payments-api-7d9c8b6f5-00002");
    assert_eq!(book.missing(), [lost.clone()].into());
    let v = book.version();
    // One cycle repairs 25 items; the next one 10 more: the latest 20 are listed.
    book.record_drift((0..25).map(drift_record).collect(), &[lost]);
    assert!(book.version() > v, "drift is written soon");
    assert!(book.missing().is_empty(), "the repair put the peer back");
    book.record_drift((25..35).map(drift_record).collect(), &[]);
    book.record_drift(Vec::new(), &[]);
    let (spec, _, _) = book.document(Limits {
        max_peers: 0,
        max_bytes: usize::MAX,
    });
    let drift = spec.drift.unwrap();
    assert_eq!(drift.len(), MAX_DRIFT);
    assert_eq!(spec.drift_total, Some(35));
    assert_eq!(book.drift_total(), 35);
    let first = drift[0].pod_endpoint.as_deref().unwrap();
    let last = drift[MAX_DRIFT - 1].pod_endpoint.as_deref().unwrap();
    assert!(
        first.ends_with("0000f") && last.ends_with("00022"),
        "{first} {last}"
    );
    assert!(drift.iter().all(|d| d.repair.chars().count() == 256));
}

#[test]
fn ten_thousand_peers_and_full_drift_records_still_fit_the_budget() {
    let book = book_with(10_000);
    book.record_drift((0..100).map(drift_record).collect(), &[]);
    let limits = Limits {
        max_peers: 1000,
        max_bytes: 1_000_000,
    };
    let (spec, total, _) = book.document(limits);
    let bytes = serde_json::to_vec(&spec).unwrap().len();
    let drift_bytes = serde_json::to_vec(&spec.drift).unwrap().len();
    eprintln!("10,000 peers and {MAX_DRIFT} drift records: {bytes} bytes ({drift_bytes} of drift)");
    assert_eq!(total, 10_000);
    assert_eq!(spec.drift.as_ref().unwrap().len(), MAX_DRIFT);
    assert!(bytes + 128 <= 1_000_000, "{bytes}");
    assert!(drift_bytes < 10_000, "{drift_bytes}");
}
