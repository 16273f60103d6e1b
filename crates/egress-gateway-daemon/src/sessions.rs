//! The sessions query (`GET /sessions/<SGC UID>/<pod IPs>`, wire format in
//! `egress_api::sessions`), served on the daemon's health port: which of the asking node's
//! pods hold a WireGuard session with this gateway node, so that a CNI manager whose pods'
//! gateway node dies re-handshakes only the tunnels whose session was on the dead node
//! (docs/design.md, "Only the dead node's tunnels").
//!
//! Anyone who reaches the port may ask, so an answer costs at most one device read per
//! gateway per [`READ_TTL`] however many ask (every worker node's manager asks every few
//! seconds), and the query is bounded by the parser. It reveals only when pods the asker
//! names last completed a handshake.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use egress_api::sessions::{self as wire, SessionsAnswer};
use egress_dataplane::observed::ObservedWgDevice;
use egress_dataplane::{Dataplane, NetnsRef, WgDeviceId};
use hyper::StatusCode;
use tokio::sync::Mutex;

use crate::http::Answer;
use crate::probe::ProbeState;

/// How long one read of a gateway's peers answers queries.
pub const READ_TTL: Duration = Duration::from_secs(1);

/// Handshake time by pod IP, of one gateway device.
type Handshakes = Arc<BTreeMap<IpAddr, i64>>;

/// Answers sessions queries from the gateways' devices.
#[derive(Clone)]
pub struct Sessions {
    dataplane: Dataplane,
    netns: NetnsRef,
    probe: ProbeState,
    /// The latest read of each interface; the lock also makes concurrent queries share a
    /// read.
    reads: Arc<Mutex<BTreeMap<String, (Instant, Handshakes)>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("netns", &self.netns)
            .finish_non_exhaustive()
    }
}

/// The handshake times of a device's peers, by pod IP (each host address a peer is allowed;
/// peers without a handshake left out).
pub fn handshakes(device: &ObservedWgDevice) -> BTreeMap<IpAddr, i64> {
    device
        .peers
        .values()
        .filter_map(|p| {
            let at = p
                .last_handshake?
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?;
            let ms = i64::try_from(at.as_millis()).ok().filter(|ms| *ms > 0)?;
            Some((p, ms))
        })
        .flat_map(|(p, ms)| {
            p.allowed_ips
                .iter()
                .filter(|net| net.prefix_len() == net.max_prefix_len())
                .map(move |net| (net.addr(), ms))
        })
        .collect()
}

/// The answer for `ips` from a device's handshakes.
pub fn select(handshakes: &BTreeMap<IpAddr, i64>, ips: &[IpAddr]) -> SessionsAnswer {
    SessionsAnswer {
        sessions: ips
            .iter()
            .filter_map(|ip| handshakes.get(ip).map(|ms| (*ip, *ms)))
            .collect(),
    }
}

fn text(status: StatusCode, body: String) -> Answer {
    (status, "text/plain; charset=utf-8", body)
}

impl Sessions {
    /// Queries read the gateways of `probe` in `netns` through `dataplane`.
    pub fn new(dataplane: Dataplane, netns: NetnsRef, probe: ProbeState) -> Self {
        Self {
            dataplane,
            netns,
            probe,
            reads: Arc::default(),
        }
    }

    /// The answer to `path` (a query under `/sessions/`).
    pub async fn answer(&self, path: &str) -> Answer {
        let query = match wire::parse(path) {
            Ok(q) => q,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        let Some(interface) = self.probe.interface_of(&query.uid) else {
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "SGC UID {} has no programmed gateway on this node\n",
                    query.uid
                ),
            );
        };
        match self.read(&interface).await {
            Ok(handshakes) => match serde_json::to_string(&select(&handshakes, &query.ips)) {
                Ok(body) => (StatusCode::OK, "application/json", body),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("failed to read {interface}: {reason}\n"),
            ),
        }
    }

    async fn read(&self, interface: &str) -> Result<Handshakes, String> {
        let mut reads = self.reads.lock().await;
        if let Some((at, h)) = reads.get(interface)
            && at.elapsed() < READ_TTL
        {
            return Ok(h.clone());
        }
        let id = WgDeviceId {
            netns: self.netns.clone(),
            name: interface.parse().map_err(|e| format!("{e}"))?,
        };
        let device = self
            .dataplane
            .wireguard
            .observe(&id)
            .await
            .map_err(|e| egress_runtime::error_chain(&e))?
            .ok_or_else(|| "no such device".to_owned())?;
        let h: Handshakes = Arc::new(handshakes(&device));
        reads.retain(|_, (at, _)| at.elapsed() < READ_TTL);
        reads.insert(interface.to_owned(), (Instant::now(), h.clone()));
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use egress_dataplane::PublicKey;
    use egress_dataplane::observed::ObservedPeer;

    fn peer(ip: &str, last_handshake: Option<SystemTime>) -> ObservedPeer {
        ObservedPeer {
            allowed_ips: [ip.parse().unwrap()].into(),
            endpoint: None,
            last_handshake,
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32]).unwrap()
    }

    #[tokio::test]
    async fn a_bad_query_an_unknown_gateway_and_a_missing_device_each_say_so() {
        let fake = egress_dataplane::fake::FakeNode::new();
        let probe = ProbeState::default();
        let sessions = Sessions::new(fake.dataplane(), NetnsRef::Current, probe.clone());
        let (status, _, body) = sessions.answer("/sessions/u1/xyz").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("not a pod IP"), "{body}");
        let (status, _, body) = sessions.answer("/sessions/u1/10.244.0.5").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("no programmed gateway"), "{body}");
        probe.set_interfaces([("u1".to_owned(), "wg-6000".to_owned())].into());
        let (status, _, body) = sessions.answer("/sessions/u1/10.244.0.5").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("wg-6000"), "{body}");
    }

    #[test]
    fn only_asked_pods_with_a_handshake_are_answered() {
        let mut device = ObservedWgDevice::default();
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        device.peers.insert(key(1), peer("10.244.0.5/32", Some(at)));
        device.peers.insert(key(2), peer("10.244.0.6/32", None));
        // wireguard-go reports "never" as the epoch.
        device
            .peers
            .insert(key(3), peer("10.244.0.7/32", Some(SystemTime::UNIX_EPOCH)));
        // Not a pod address (a route through the peer): never an answer.
        device.peers.insert(key(4), peer("10.9.0.0/16", Some(at)));
        let h = handshakes(&device);
        assert_eq!(h.len(), 1);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let asked = [
            ip("10.244.0.5"),
            ip("10.244.0.6"),
            ip("10.244.0.99"),
            ip("10.9.0.0"),
        ];
        let a = select(&h, &asked);
        assert_eq!(a.sessions, [(ip("10.244.0.5"), 1_700_000_000_123)].into());
    }
}
