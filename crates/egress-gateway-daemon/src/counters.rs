//! Periodic sampling of the gateways' WireGuard state into metrics: peers and the latest
//! handshake from the device (UAPI / generic netlink), bytes and packets from the tunnel
//! interface's counters (`/proc/net/dev` read from a thread inside the gateway namespace).
//! Sampling, not reading at scrape time, keeps a scrape cheap at 10,000 peers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use egress_dataplane::netns::run_in_netns_async;
use egress_dataplane::{Dataplane, InterfaceName, NetnsRef, WgDeviceId};

use crate::metrics::{GatewayLabels, Metrics, Traffic};
use crate::status::StatusBook;

/// Parses `/proc/net/dev` into counters per interface.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, Traffic> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            (f.len() >= 10).then(|| {
                (
                    name.trim().to_owned(),
                    Traffic {
                        rx_bytes: f[0],
                        rx_packets: f[1],
                        tx_bytes: f[8],
                        tx_packets: f[9],
                    },
                )
            })
        })
        .collect()
}

fn delta(now: Traffic, before: Option<Traffic>) -> Traffic {
    // Counters restart from zero when the interface is recreated.
    let d = |n: u64, b: Option<u64>| match b {
        Some(b) if n >= b => n - b,
        _ => n,
    };
    Traffic {
        rx_bytes: d(now.rx_bytes, before.map(|b| b.rx_bytes)),
        tx_bytes: d(now.tx_bytes, before.map(|b| b.tx_bytes)),
        rx_packets: d(now.rx_packets, before.map(|b| b.rx_packets)),
        tx_packets: d(now.tx_packets, before.map(|b| b.tx_packets)),
    }
}

/// Samples every `interval` until dropped.
pub async fn sample_counters(
    dataplane: Dataplane,
    gateway_netns: NetnsRef,
    book: StatusBook,
    metrics: Metrics,
    interval: Duration,
) {
    let mut last: BTreeMap<GatewayLabels, Traffic> = BTreeMap::new();
    loop {
        let gateways: BTreeMap<GatewayLabels, InterfaceName> = book
            .gateways()
            .into_iter()
            .filter_map(|(sgc, iface)| {
                let name = iface.parse().ok()?;
                Some((
                    GatewayLabels {
                        gateway: sgc.to_string(),
                        interface: iface,
                    },
                    name,
                ))
            })
            .collect();
        for gone in last
            .keys()
            .filter(|l| !gateways.contains_key(*l))
            .cloned()
            .collect::<Vec<_>>()
        {
            metrics.forget_gateway(&gone);
            last.remove(&gone);
        }
        let stats = if gateways.is_empty() {
            BTreeMap::new()
        } else {
            run_in_netns_async(&gateway_netns, || {
                std::fs::read_to_string("/proc/thread-self/net/dev")
            })
            .await
            .ok()
            .and_then(Result::ok)
            .map(|t| parse_net_dev(&t))
            .unwrap_or_default()
        };
        for (labels, name) in &gateways {
            let id = WgDeviceId {
                netns: gateway_netns.clone(),
                name: name.clone(),
            };
            let sampled_at = std::time::Instant::now();
            let Ok(Some(device)) = dataplane.wireguard.observe(&id).await else {
                continue;
            };
            book.observe_device(
                name.as_str(),
                device
                    .peers
                    .iter()
                    .map(|(k, p)| (k.to_base64(), p.last_handshake)),
                sampled_at,
            );
            let latest = device.peers.values().filter_map(|p| p.last_handshake).max();
            let age = latest.map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
            let traffic = stats.get(name.as_str()).copied();
            let growth = traffic.map(|t| delta(t, last.get(labels).copied()));
            if let Some(t) = traffic {
                last.insert(labels.clone(), t);
            }
            metrics.sample(labels, device.peers.len(), age, growth);
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn reads_proc_net_dev_and_survives_counter_resets() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\nwg-6000:    1500      10    0    0    0     0          0         0     3000      20    0    0    0     0       0          0\n";
        let stats = parse_net_dev(text);
        let wg = stats["wg-6000"];
        assert_eq!(
            wg,
            Traffic {
                rx_bytes: 1500,
                rx_packets: 10,
                tx_bytes: 3000,
                tx_packets: 20
            }
        );
        let grown = Traffic {
            rx_bytes: 2000,
            ..wg
        };
        assert_eq!(delta(grown, Some(wg)).rx_bytes, 500);
        assert_eq!(
            delta(wg, Some(grown)).rx_bytes,
            1500,
            "reset counts from zero"
        );
    }
}
