//! Where this node's tunnels hold their WireGuard sessions, so that when gateway nodes of an
//! SGC are lost (and none gained) only the tunnels whose session was on a lost node are
//! re-handshaken, at once; the others keep theirs, since a load balancer keeps a flow on its
//! healthy backend. Resetting every tunnel instead doubles the handshakes the survivors must
//! answer in the same second with two gateways (docs/design.md, "Only the dead node's
//! tunnels").
//!
//! Neither end of a tunnel can tell from its own state which gateway node holds its session
//! (the pod's endpoint is the load balancer's frontend; every gateway node has the same key
//! and peers), but each gateway node knows whom it holds sessions with. So every
//! [`REFRESH`] the manager asks each healthy gateway node of each SGC it uses
//! (`egress_api::sessions`, pod IPs from its tunnel records: no device read) and locates
//! each pod on the node with its latest handshake: a pod's handshakes go wherever the load
//! balancer sends its flow, which changes only when the healthy set does.
//!
//! A map counts only while the healthy set is the one it was taken with: any change
//! (a loss, a gain) makes it stale until the next refresh. Anything uncertain resets: a
//! tunnel the map does not place (new since, or no handshake), a refresh some node did not
//! answer, no map at all. A spared tunnel is still watched, so a flow the load balancer
//! moves after all is kicked.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use egress_api::sessions::{self as wire, SessionsAnswer};
use http_body_util::{BodyExt, Empty, Limited};

/// How often the sessions of each SGC in use are located (±25 %).
pub const REFRESH: Duration = Duration::from_secs(10);
/// A refresh follows this soon after the node's tunnels changed (at most one a second).
pub const AFTER_TUNNELS_CHANGED: Duration = Duration::from_secs(1);
/// A refresh follows this soon after an SGC's healthy set changed (its tunnels have
/// handshaken again by then).
pub const AFTER_HEALTH_CHANGED: Duration = Duration::from_secs(3);
/// How long a gateway node has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of an answer read (1,024 pods and their times).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where an SGC's tunnels on this node held their sessions when last asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMap {
    /// The healthy gateway nodes asked (all of them answered).
    pub asked: BTreeSet<IpAddr>,
    /// When the refresh started.
    pub taken: Instant,
    /// Pod IP → the gateway node holding its latest handshake.
    pub located: BTreeMap<IpAddr, IpAddr>,
}

/// Pure: each pod on the node that holds its latest handshake (a tie, which two handshakes
/// of one pod on two nodes in the same millisecond would be, places it nowhere).
pub fn locate(answers: &BTreeMap<IpAddr, SessionsAnswer>) -> BTreeMap<IpAddr, IpAddr> {
    let mut best: BTreeMap<IpAddr, (i64, Option<IpAddr>)> = BTreeMap::new();
    for (node, answer) in answers {
        for (pod, ms) in &answer.sessions {
            match best.get_mut(pod) {
                Some((t, at)) if *ms == *t => *at = None,
                Some((t, at)) if *ms > *t => (*t, *at) = (*ms, Some(*node)),
                Some(_) => {}
                None => {
                    best.insert(*pod, (*ms, Some(*node)));
                }
            }
        }
    }
    best.into_iter()
        .filter_map(|(pod, (_, node))| Some((pod, node?)))
        .collect()
}

/// Pure: the tunnels (container ID, pod IP) to spare when the healthy set went from
/// `before` to `after`: those `map` places on a node still healthy. Nothing when the map was
/// not taken with exactly `before`, or nodes were gained (the load balancer may move any
/// flow onto a new node).
pub fn spared(
    map: Option<&SessionMap>,
    before: &BTreeSet<IpAddr>,
    after: &BTreeSet<IpAddr>,
    tunnels: &[(String, IpAddr)],
) -> BTreeSet<String> {
    let Some(map) = map.filter(|m| m.asked == *before) else {
        return BTreeSet::new();
    };
    if !after.is_subset(before) {
        return BTreeSet::new();
    }
    tunnels
        .iter()
        .filter(|(_, pod)| map.located.get(pod).is_some_and(|n| after.contains(n)))
        .map(|(id, _)| id.clone())
        .collect()
}

/// A gateway node's answer could not be had.
#[derive(Debug, thiserror::Error)]
#[error("sessions query to {addr} failed: {reason}")]
pub struct QueryError {
    /// The gateway daemon.
    pub addr: SocketAddr,
    /// Why.
    pub reason: String,
}

/// Asks every node of `asked` (port `port`) about `pods` of the SGC `uid`; the map when all
/// of them answered.
pub async fn refresh(
    asked: BTreeSet<IpAddr>,
    port: u16,
    uid: String,
    pods: Vec<IpAddr>,
) -> Result<SessionMap, QueryError> {
    let taken = Instant::now();
    let answers = futures::future::try_join_all(asked.iter().map(|node| {
        let (uid, pods) = (&uid, &pods);
        async move {
            let addr = SocketAddr::new(*node, port);
            tokio::time::timeout(TIMEOUT, ask(addr, uid, pods))
                .await
                .map_err(|_| QueryError {
                    addr,
                    reason: format!("no answer within {TIMEOUT:?}"),
                })?
                .map(|a| (*node, a))
        }
    }))
    .await?;
    Ok(SessionMap {
        located: locate(&answers.into_iter().collect()),
        asked,
        taken,
    })
}

/// One query on a short-lived connection (one every [`REFRESH`] per node: not worth
/// keeping open).
async fn ask(addr: SocketAddr, uid: &str, pods: &[IpAddr]) -> Result<SessionsAnswer, QueryError> {
    let fail = |reason: String| QueryError { addr, reason };
    let mut sender = super::prober::connect(addr)
        .await
        .ok_or_else(|| fail("failed to connect".into()))?;
    let req = hyper::Request::get(wire::path(uid, pods))
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?
        .to_bytes();
    if status != hyper::StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        return Err(fail(format!("{status}: {}", text.trim())));
    }
    serde_json::from_slice::<SessionsAnswer>(&body).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn answer(pods: &[(&str, i64)]) -> SessionsAnswer {
        SessionsAnswer {
            sessions: pods.iter().map(|(p, ms)| (ip(p), *ms)).collect(),
        }
    }

    #[test]
    fn a_pod_is_placed_on_the_node_of_its_latest_handshake() {
        let (a, b) = (ip("10.224.0.6"), ip("10.224.0.7"));
        let answers = [
            // p1 moved from a to b (a re-hash) 30 s ago: a still has the older handshake.
            (
                a,
                answer(&[("10.244.0.1", 100_000), ("10.244.0.2", 120_000)]),
            ),
            (b, answer(&[("10.244.0.1", 130_000), ("10.244.0.3", 5)])),
        ]
        .into();
        let located = locate(&answers);
        assert_eq!(
            located,
            [
                (ip("10.244.0.1"), b),
                (ip("10.244.0.2"), a),
                (ip("10.244.0.3"), b)
            ]
            .into()
        );
        let tie = [
            (a, answer(&[("10.244.0.1", 7)])),
            (b, answer(&[("10.244.0.1", 7)])),
        ]
        .into();
        assert!(locate(&tie).is_empty());
    }

    #[test]
    fn only_tunnels_on_a_survivor_are_spared_and_only_by_a_current_map() {
        let (a, b, c) = (ip("10.224.0.6"), ip("10.224.0.7"), ip("10.224.0.8"));
        let map = SessionMap {
            asked: [a, b, c].into(),
            taken: Instant::now(),
            located: [
                (ip("10.244.0.1"), a),
                (ip("10.244.0.2"), b),
                (ip("10.244.0.3"), c),
            ]
            .into(),
        };
        let tunnels = vec![
            ("on-a".to_owned(), ip("10.244.0.1")),
            ("on-b".to_owned(), ip("10.244.0.2")),
            ("on-c".to_owned(), ip("10.244.0.3")),
            ("new".to_owned(), ip("10.244.0.4")),
        ];
        let all: BTreeSet<IpAddr> = [a, b, c].into();
        // a is lost: its tunnel and the one the map does not place are reset.
        let s = spared(Some(&map), &all, &[b, c].into(), &tunnels);
        assert_eq!(s, ["on-b".to_owned(), "on-c".to_owned()].into());
        // A map taken with another healthy set is stale.
        assert!(spared(Some(&map), &[b, c].into(), &[c].into(), &tunnels).is_empty());
        // A gain spares nothing; nor does no map.
        let gained: BTreeSet<IpAddr> = [a, b, c, ip("10.224.0.9")].into();
        assert!(spared(Some(&map), &all, &gained, &tunnels).is_empty());
        assert!(spared(None, &all, &[b].into(), &tunnels).is_empty());
    }

    #[tokio::test]
    async fn a_refresh_needs_every_node_and_names_the_one_that_failed() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(egress_runtime::serve(
            l,
            |path| match wire::parse(path) {
                Ok(q) if q.uid == "u1" => (
                    hyper::StatusCode::OK,
                    "application/json",
                    format!(r#"{{"sessions":{{"{}":42}}}}"#, q.ips[0]),
                ),
                Ok(_) => (hyper::StatusCode::NOT_FOUND, "text/plain", "no gw\n".into()),
                Err(e) => (hyper::StatusCode::BAD_REQUEST, "text/plain", e.to_string()),
            },
            std::future::pending(),
        ));
        let node = ip("127.0.0.1");
        let map = refresh([node].into(), port, "u1".into(), vec![ip("10.244.0.1")])
            .await
            .unwrap();
        assert_eq!(map.located, [(ip("10.244.0.1"), node)].into());
        let e = refresh([node].into(), port, "u2".into(), vec![ip("10.244.0.1")])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("404") && e.contains("no gw"), "{e}");
        // Nothing listens on port 9 of 127.0.0.2: the whole refresh fails.
        let e = refresh(
            [node, ip("127.0.0.2")].into(),
            9,
            "u1".into(),
            vec![ip("10.244.0.1")],
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("127.0.0.2:9") || e.to_string().contains("127.0.0.1:9"));
    }
}
