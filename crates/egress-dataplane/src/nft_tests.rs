//! Tests of the nftables model against listings captured from `nft -j` 1.0.6 (testdata/).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

fn gateway_table() -> NftTable {
    NftTable::GatewayNat {
        egress: "host0".parse().unwrap(),
        rules: [
            SnatRule {
                tunnel: "wg-6000".parse().unwrap(),
                mark: FwMark::new(6000).unwrap(),
                to: "198.51.100.10".parse().unwrap(),
            },
            SnatRule {
                tunnel: "wg-6001".parse().unwrap(),
                mark: FwMark::new(6001).unwrap(),
                to: "198.51.100.11".parse().unwrap(),
            },
        ]
        .into(),
    }
}

fn host_table() -> NftTable {
    NftTable::HostNoMasquerade {
        sources: [
            "198.51.100.10".parse().unwrap(),
            "198.51.100.11".parse().unwrap(),
        ]
        .into(),
    }
}

fn gateway_table6() -> NftTable {
    NftTable::GatewayNat6 {
        egress: "host0".parse().unwrap(),
        rules: [
            SnatRule {
                tunnel: "wg-6000".parse().unwrap(),
                mark: FwMark::new(6000).unwrap(),
                to: "fd00::10".parse().unwrap(),
            },
            SnatRule {
                tunnel: "wg-6001".parse().unwrap(),
                mark: FwMark::new(6001).unwrap(),
                to: "fd00:0:0:1::11".parse().unwrap(),
            },
        ]
        .into(),
    }
}

fn host_table6() -> NftTable {
    NftTable::HostNoMasquerade6 {
        sources: [
            "fd00::10".parse().unwrap(),
            "fd00:0:0:1::11".parse().unwrap(),
        ]
        .into(),
    }
}

fn pod_table() -> NftTable {
    NftTable::PodIngressMark {
        eth: "eth0".parse().unwrap(),
        mark: FwMark::new(8738).unwrap(),
    }
}

/// `testdata/nft-<name>.json` for `ip` tables, `nft-ip6-<name>.json` for `ip6` ones.
fn listing_of(id: &NftTableId) -> Value {
    match id.family {
        TableFamily::Ip => listing(&id.name),
        TableFamily::Ip6 => listing(&format!("ip6-{}", id.name)),
    }
}

fn listing(name: &str) -> Value {
    let path = format!("{}/testdata/nft-{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn listings_written_by_nft_are_recognised_as_the_tables_we_wrote() {
    for table in [
        gateway_table(),
        host_table(),
        pod_table(),
        gateway_table6(),
        host_table6(),
        NftTable::PodIngressMark6 {
            eth: "eth0".parse().unwrap(),
            mark: FwMark::new(8738).unwrap(),
        },
    ] {
        let id = table.id();
        assert_eq!(NftTable::from_listing(&id, &listing_of(&id)), table, "{id}");
    }
}

#[test]
fn a_listing_of_one_family_is_not_the_other_familys_table() {
    // Same names in both families: only the family tells them apart.
    let v4 = NftTableId::ip(GATEWAY_TABLE);
    let v6 = NftTableId::ip6(GATEWAY_TABLE);
    assert_ne!(v4, v6);
    assert_eq!(v6.to_string(), "table ip6 egress_gateway");
    assert_eq!(
        NftTable::from_listing(&v6, &listing(GATEWAY_TABLE)),
        NftTable::Unrecognised(v6.clone())
    );
    assert_eq!(
        NftTable::from_listing(&v4, &listing_of(&v6)),
        NftTable::Unrecognised(v4.clone())
    );
    let host6 = NftTableId::ip6(HOST_TABLE);
    assert_eq!(
        NftTable::from_listing(&host6, &listing(HOST_TABLE)),
        NftTable::Unrecognised(host6.clone())
    );
    let pod6 = NftTableId::ip6(POD_TABLE);
    assert_eq!(
        NftTable::from_listing(&pod6, &listing(POD_TABLE)),
        NftTable::Unrecognised(pod6.clone())
    );
    let pod4 = NftTableId::ip(POD_TABLE);
    assert_eq!(
        NftTable::from_listing(&pod4, &listing_of(&pod6)),
        NftTable::Unrecognised(pod4.clone())
    );
}

#[test]
fn any_difference_in_a_listing_is_drift() {
    let id = NftTableId::ip(GATEWAY_TABLE);
    // An extra rule somebody added by hand.
    let mut extra = listing(GATEWAY_TABLE);
    let objs = extra["nftables"].as_array_mut().unwrap();
    let mut rule = objs
        .iter()
        .find(|o| o.get("rule").is_some())
        .unwrap()
        .clone();
    rule["rule"]["handle"] = 99.into();
    objs.push(rule);
    assert_eq!(
        NftTable::from_listing(&id, &extra),
        NftTable::Unrecognised(id.clone())
    );
    // A mark without a SNAT source.
    let mut orphan = listing(GATEWAY_TABLE);
    for o in orphan["nftables"].as_array_mut().unwrap() {
        if o["map"]["name"] == "snat_sources" {
            o["map"]["elem"].as_array_mut().unwrap().pop();
        }
    }
    assert_eq!(
        NftTable::from_listing(&id, &orphan),
        NftTable::Unrecognised(id.clone())
    );
    // A chain at another priority.
    let mut moved = listing(POD_TABLE);
    for o in moved["nftables"].as_array_mut().unwrap() {
        if o["chain"]["name"] == "output" {
            o["chain"]["prio"] = 0.into();
        }
    }
    let pod = NftTableId::ip(POD_TABLE);
    assert_eq!(
        NftTable::from_listing(&pod, &moved),
        NftTable::Unrecognised(pod.clone())
    );
}

#[test]
fn the_rule_count_does_not_grow_with_gateways_or_pods() {
    let rules = |t: &NftTable| {
        t.objects()
            .iter()
            .filter(|o| matches!(o, NfListObject::Rule(_)))
            .count()
    };
    let one = NftTable::GatewayNat {
        egress: "host0".parse().unwrap(),
        rules: [SnatRule {
            tunnel: "wg-6000".parse().unwrap(),
            mark: FwMark::new(6000).unwrap(),
            to: "198.51.100.10".parse().unwrap(),
        }]
        .into(),
    };
    assert_eq!(rules(&one), 2);
    assert_eq!(rules(&gateway_table()), 2);
    let many = NftTable::HostNoMasquerade {
        sources: (1..=200u8)
            .map(|i| Ipv4Addr::new(198, 51, 100, i))
            .collect(),
    };
    assert_eq!(rules(&many), 1);
}

#[test]
fn the_replace_batch_is_add_delete_recreate_in_one_document() {
    let doc = serde_json::to_value(gateway_table().replace_batch()).unwrap();
    let cmds = doc["nftables"].as_array().unwrap();
    assert!(cmds[0]["add"]["table"].is_object());
    assert!(cmds[1]["delete"]["table"].is_object());
    assert!(cmds[2]["add"]["table"].is_object());
    assert_eq!(cmds.len(), 3 + gateway_table().objects().len() - 1);
}

#[test]
fn tables_display_their_meaning() {
    assert_eq!(
        gateway_table().to_string(),
        "table ip egress_gateway { snat out host0: iif wg-6000 -> ct mark 0x1770 -> snat to 198.51.100.10,iif wg-6001 -> ct mark 0x1771 -> snat to 198.51.100.11 }"
    );
    assert_eq!(
        gateway_table6().to_string(),
        "table ip6 egress_gateway { snat out host0: iif wg-6000 -> ct mark 0x1770 -> snat to fd00::10,iif wg-6001 -> ct mark 0x1771 -> snat to fd00:0:0:1::11 }"
    );
    assert_eq!(
        host_table6().to_string(),
        "table ip6 egress_gateway_host { no masquerade for fd00::10,fd00:0:0:1::11 }"
    );
    assert_eq!(
        pod_table().to_string(),
        "table ip egress_pod { mark connections from eth0 with 0x2222 }"
    );
}
