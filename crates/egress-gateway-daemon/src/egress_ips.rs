//! The node's private IPv4 addresses and the public IP Azure maps each to, read from IMDS
//! (`network.interface[].ipv4.ipAddress[]`) and published in the GatewayStatus (`egressIPs`),
//! so `egressctl` can name the exact egress IP of a gateway node: the operator's status only
//! knows the prefix. Read at start, when the ready gateways change (a new secondary IP) and
//! every `REFRESH` (Azure attaches public IPs asynchronously). IMDS is node-local and rate
//! limits at 5 requests per second; this stays far below.

use std::time::Duration;

use egress_api::EgressIp;
use egress_imds::ImdsClient;

use crate::metrics::Metrics;
use crate::status::StatusBook;

/// Longest time between two reads.
pub const REFRESH: Duration = Duration::from_secs(30);

/// The published form of IMDS's address pairs (sorted, empty public IPs left out).
pub fn egress_ips(pairs: &[egress_imds::IpAddressPair]) -> Vec<EgressIp> {
    let mut out: Vec<EgressIp> = pairs
        .iter()
        .filter(|p| !p.private_ip_address.is_empty())
        .map(|p| EgressIp {
            private_ip: p.private_ip_address.clone(),
            public_ip: Some(p.public_ip_address.clone()).filter(|s| !s.is_empty()),
        })
        .collect();
    out.sort_by(|a, b| a.private_ip.cmp(&b.private_ip));
    out.dedup();
    out
}

/// Reads IMDS at `imds_url` into `book` until dropped.
pub async fn publish_egress_ips(imds_url: String, book: StatusBook, metrics: Metrics) {
    let client = match ImdsClient::new(&imds_url) {
        Ok(c) => c,
        Err(e) => {
            metrics.error("imds");
            tracing::warn!(error = %e, "not publishing egress IPs: bad IMDS URL");
            return;
        }
    };
    loop {
        match client.instance().await {
            Ok(meta) => book.set_egress_ips(egress_ips(&meta.ipv4_addresses)),
            Err(e) => {
                metrics.error("imds");
                tracing::debug!(error = %e, "failed to read the node's addresses from IMDS");
            }
        }
        tokio::select! {
            () = book.wait_gateways_changed() => {}
            () = tokio::time::sleep(REFRESH) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn pairs_become_sorted_egress_ips() {
        let p = |a: &str, b: &str| egress_imds::IpAddressPair {
            private_ip_address: a.into(),
            public_ip_address: b.into(),
        };
        let out = egress_ips(&[p("10.0.1.9", "203.0.113.1"), p("10.0.1.4", ""), p("", "x")]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].private_ip, "10.0.1.4");
        assert_eq!(out[0].public_ip, None);
        assert_eq!(out[1].public_ip.as_deref(), Some("203.0.113.1"));
    }
}
