//! Probes every gateway node of the SGCs this node's tunnels use, with the very request the
//! load balancer sends (`GET /gw/<SGC UID>` on the node's primary IP and probe port): 200 is
//! healthy; any other answer, a failed connection or no answer within the timeout is not,
//! after a single probe, as the load balancer's threshold of 1.
//!
//! One task per target keeps an HTTP/1.1 connection open between probes (a probe costs the
//! gateway one request, not a TCP handshake). The socket has `IP_RECVERR`, so where the
//! network reports a node unreachable a *new* connection fails at once; on the kept-alive one
//! the error is set one retransmission after the request, but tokio wakes a read only for
//! readable or read-closed and hyper does not see it: in practice a dead node is seen down at
//! the probe's timeout, as a powered-off VM is by the load balancer. (Surfacing it, with a
//! second descriptor registered for errors, made the 500-pod simulator runs slower: managers
//! that learn of a death before the load balancer kick into the dead node until it moves;
//! docs/benchmarks.md, 2026-12-05.)

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::health::SgcRef;

/// One probe answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The SGC.
    pub sgc: SgcRef,
    /// The UID probed (`/gw/<uid>`).
    pub uid: String,
    /// The gateway node.
    pub node: IpAddr,
    /// 200 within the timeout.
    pub up: bool,
}

/// How to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// The gateway daemons' probe port (`gatewayLbProbePort`).
    pub port: u16,
    /// Time between two probes of a target.
    pub interval: Duration,
    /// Longest wait for a connection and an answer.
    pub timeout: Duration,
}

/// The running probe tasks.
#[derive(Debug)]
pub struct Prober {
    settings: ProbeSettings,
    results: mpsc::Sender<ProbeResult>,
    tasks: BTreeMap<(SgcRef, String, IpAddr), JoinHandle<()>>,
}

impl Prober {
    /// A prober reporting into `results`.
    pub fn new(settings: ProbeSettings, results: mpsc::Sender<ProbeResult>) -> Self {
        Self {
            settings,
            results,
            tasks: BTreeMap::new(),
        }
    }

    /// Probes exactly `targets` from now on. A new target is probed at once (its tunnels may
    /// need failover already), then at a random point of the interval, so the probes of one
    /// node and of many nodes do not come in bursts.
    pub fn sync(&mut self, targets: &BTreeSet<(SgcRef, String, IpAddr)>) {
        self.tasks.retain(|k, task| {
            let keep = targets.contains(k);
            if !keep {
                task.abort();
            }
            keep
        });
        for target in targets {
            if self.tasks.contains_key(target) {
                continue;
            }
            let (sgc, uid, node) = target.clone();
            let settings = self.settings;
            let results = self.results.clone();
            let task = tokio::spawn(probe_loop(sgc, uid, node, settings, results));
            self.tasks.insert(target.clone(), task);
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

async fn probe_loop(
    sgc: SgcRef,
    uid: String,
    node: IpAddr,
    settings: ProbeSettings,
    results: mpsc::Sender<ProbeResult>,
) {
    let addr = SocketAddr::new(node, settings.port);
    let path = format!("/gw/{uid}");
    let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
    let phase = settings.interval.mul_f64(fastrand::f64());
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + phase, settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            ticks.tick().await;
        }
        let up = tokio::time::timeout(settings.timeout, probe_once(addr, &path, &mut conn))
            .await
            .unwrap_or(false);
        if !up {
            // A failed or late answer leaves the connection in an unknown state.
            conn = None;
        }
        let result = ProbeResult {
            sgc: sgc.clone(),
            uid: uid.clone(),
            node,
            up,
        };
        if results.send(result).await.is_err() {
            return;
        }
    }
}

async fn probe_once(
    addr: SocketAddr,
    path: &str,
    conn: &mut Option<SendRequest<Empty<Bytes>>>,
) -> bool {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = connect(addr).await;
    }
    let Some(sender) = conn.as_mut() else {
        return false;
    };
    if sender.ready().await.is_err() {
        return false;
    }
    let Ok(req) = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
    else {
        return false;
    };
    match sender.send_request(req).await {
        // The body is a few bytes; dropping it unread is fine for keep-alive with hyper
        // only once it was read, so read it.
        Ok(resp) => {
            let ok = resp.status() == hyper::StatusCode::OK;
            ok && http_body_util::BodyExt::collect(resp.into_body())
                .await
                .is_ok()
        }
        Err(_) => false,
    }
}

/// A kept-alive HTTP/1 connection to `addr` (also the sessions queries').
pub(super) async fn connect(addr: SocketAddr) -> Option<SendRequest<Empty<Bytes>>> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4().ok()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6().ok()?,
    };
    // ICMP errors (host or network unreachable) fail a connection attempt at once instead of
    // being retransmitted into until the timeout (see the module doc for an established one).
    let recverr = match addr {
        SocketAddr::V4(_) => {
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
        }
        SocketAddr::V6(_) => {
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6RecvErr, &true)
        }
    };
    if let Err(e) = recverr {
        tracing::debug!(error = %e, "failed to set IP_RECVERR on a probe socket");
    }
    let stream = socket.connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Some(sender)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU16, Ordering};

    /// A gateway probe endpoint answering `status` (shared, changeable).
    async fn gateway(status: Arc<AtomicU16>) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(egress_runtime::serve(
            l,
            move |path| {
                let code = status.load(Ordering::SeqCst);
                let s = hyper::StatusCode::from_u16(code).unwrap();
                assert!(path.starts_with("/gw/"));
                (s, "text/plain", String::new())
            },
            std::future::pending(),
        ));
        addr
    }

    #[tokio::test]
    async fn answers_become_results_and_a_dead_port_is_down() {
        let status = Arc::new(AtomicU16::new(200));
        let addr = gateway(status.clone()).await;
        let (tx, mut rx) = mpsc::channel(16);
        let settings = ProbeSettings {
            port: addr.port(),
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(500),
        };
        let mut prober = Prober::new(settings, tx);
        let sgc = SgcRef::new("ns", "gw");
        prober.sync(&[(sgc.clone(), "u1".to_string(), addr.ip())].into());
        let first = rx.recv().await.unwrap();
        assert!(first.up, "{first:?}");
        assert_eq!(first.uid, "u1");
        status.store(503, Ordering::SeqCst);
        let mut down = false;
        for _ in 0..20 {
            if !rx.recv().await.unwrap().up {
                down = true;
                break;
            }
        }
        assert!(down, "503 is down");
        prober.sync(&BTreeSet::new());
        // Nothing listens on port 9 of 127.0.0.2: refused, down.
        let settings = ProbeSettings {
            port: 9,
            ..settings
        };
        let (tx, mut rx) = mpsc::channel(16);
        let mut prober = Prober::new(settings, tx);
        prober.sync(&[(sgc, "u1".to_string(), "127.0.0.2".parse().unwrap())].into());
        assert!(!rx.recv().await.unwrap().up);
    }
}
