//! Unit tests of the serving order and the slot bookkeeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use egress_dataplane::PrivateKey;

use super::*;
use crate::trust::Standing;

fn claim(ip: &str, key: &PublicKey, standing: Standing) -> Claim {
    let ip: IpNet = ip.parse().unwrap();
    Claim {
        slot: PeerSlot {
            port: 6000,
            public_key: key.clone(),
            allowed_ips: [ip].into(),
        },
        ip,
        ipv6: None,
        standing,
    }
}

fn standing(created: Option<u8>, provisional: bool, terminating: bool) -> Standing {
    Standing {
        terminating,
        provisional,
        pod_created: created.map(|s| format!("2024-01-01T00:00:{s:02}Z").parse().unwrap()),
        pod_uid: format!("uid-{created:?}"),
    }
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("default", name)
}

#[test]
fn the_order_is_live_then_confirmed_then_incumbent_then_older_never_name() {
    let k = PrivateKey::generate().public_key();
    let claims: BTreeMap<ObjectKey, Claim> = [
        ("a-terminating", standing(Some(1), false, true)),
        ("b-provisional", standing(Some(1), true, false)),
        ("c-newer", standing(Some(9), false, false)),
        ("d-older", standing(Some(2), false, false)),
        ("e-incumbent-newest", standing(Some(30), false, false)),
        ("f-no-time", standing(None, false, false)),
    ]
    .into_iter()
    .map(|(n, s)| (key(n), claim("10.244.1.5/32", &k, s)))
    .collect();
    let order = serving_order(&claims, claims.keys().cloned(), |k, _| {
        k.name == "e-incumbent-newest"
    });
    let names: Vec<&str> = order.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "e-incumbent-newest",
            "d-older",
            "c-newer",
            "f-no-time",
            "b-provisional",
            "a-terminating"
        ]
    );
}

#[test]
fn holders_refuse_a_taken_ip_or_key_naming_the_holder() {
    let (k1, k2) = (
        PrivateKey::generate().public_key(),
        PrivateKey::generate().public_key(),
    );
    let mut h = Holders::default();
    let a = claim("10.244.1.5/32", &k1, standing(Some(1), false, false));
    h.take(&key("a"), &a).unwrap();
    h.take(&key("a"), &a).unwrap();
    let same_ip = claim("10.244.1.5/32", &k2, standing(Some(1), false, false));
    assert_eq!(
        h.take(&key("b"), &same_ip).unwrap_err(),
        Refusal::IpTaken {
            ip: "10.244.1.5/32".parse().unwrap(),
            holder: key("a")
        }
    );
    let same_key = claim("10.244.1.6/32", &k1, standing(Some(1), false, false));
    assert_eq!(
        h.take(&key("c"), &same_key).unwrap_err().to_string(),
        "its spec.podPublicKey is already held by PodEndpoint default/a on wg-6000"
    );
    h.release(&a.slot);
    h.take(&key("b"), &same_ip).unwrap();
    assert_eq!(h.ip_holder(&same_ip.ip), Some(&key("b")));
}

#[test]
fn contenders_are_indexed_by_ip_and_key() {
    let k = PrivateKey::generate().public_key();
    let mut c = Contenders::default();
    let a = claim("10.244.1.5/32", &k, standing(Some(1), false, false));
    let b = claim("10.244.1.6/32", &k, standing(Some(1), false, false));
    c.add(&key("a"), &a);
    c.add(&key("b"), &b);
    assert_eq!(c.of_key(&a.key_slot()).count(), 2);
    assert_eq!(c.of_ip(&a.ip).collect::<Vec<_>>(), [&key("a")]);
    c.remove(&key("a"), &a);
    assert_eq!(c.of_ip(&a.ip).count(), 0);
    assert_eq!(c.of_key(&a.key_slot()).collect::<Vec<_>>(), [&key("b")]);
}
