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
//!
//! A 503 is not always a loss yet. A draining node answers 503 to everyone at once, but the
//! load balancer moves its flows only when its own prober gets that 503, up to a probe
//! interval later; re-handshaking before would handshake with the draining node again. The
//! probe server says what the load balancer's prober was told (`egress_api::lb_told`): while
//! that is still 200 the node is *leaving* and counts as healthy, and the next probe asks the
//! server to hold its answer (up to one interval) until the load balancer's prober is
//! answered, so the loss is reported within milliseconds of the load balancer's, plus
//! [`ProbeSettings::lb_grace`] for the load balancer to act on it. A node leaving longer than
//! [`ProbeSettings::leaving_max`] (a prober source the server does not recognise, say), and
//! any 503 without that information, is a loss at once, as before.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use egress_api::lb_told::{self, LbTold};

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
    /// After the load balancer's prober got a 503, how long it may take to move the flows
    /// before the node counts as lost (a reset before that handshakes with it again).
    pub lb_grace: Duration,
    /// Longest a node may answer 503 while the load balancer was told 200 and still count
    /// as healthy.
    pub leaving_max: Duration,
}

impl ProbeSettings {
    /// The defaults with `port`, `interval` and `timeout`.
    pub fn new(port: u16, interval: Duration, timeout: Duration) -> Self {
        Self {
            port,
            interval,
            timeout,
            lb_grace: Duration::from_millis(150),
            leaving_max: Duration::from_secs(15),
        }
    }
}

/// What one probe answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// 200.
    Up,
    /// 503, but the load balancer's prober was last told 200: it still sends flows here.
    Leaving,
    /// Down, counted as lost once this much longer has passed (the rest of the grace).
    Down(Duration),
}

/// Pure: what an answer (`None`: none within the timeout) means.
pub fn classify(answer: Option<(u16, Option<LbTold>)>, lb_grace: Duration) -> Seen {
    match answer {
        Some((200, _)) => Seen::Up,
        Some((503, Some(told))) if told.status == 200 => Seen::Leaving,
        Some((503, Some(told))) if told.status == 503 => {
            Seen::Down(lb_grace.saturating_sub(told.since))
        }
        _ => Seen::Down(Duration::ZERO),
    }
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
    let mut at_once = true;
    // Since when the node has been leaving (503, the load balancer told 200).
    let mut leaving: Option<tokio::time::Instant> = None;
    loop {
        if !std::mem::take(&mut at_once) {
            ticks.tick().await;
        }
        let beyond_max = leaving.is_some_and(|since| since.elapsed() > settings.leaving_max);
        // Every probe asks to be held one interval (see the module doc), except for a node
        // leaving too long: its answers count as losses and come at the usual pace. Never
        // more than the server holds: were the ask longer, `was_held` below would miss a hold
        // the server cut short, and a node dying then would be seen a whole interval late.
        let wait = (!beyond_max).then_some(settings.interval.min(lb_told::MAX_WAIT));
        let started = tokio::time::Instant::now();
        let answer = held_probe(addr, &path, &mut conn, wait, settings.timeout).await;
        let seen = classify(answer, settings.lb_grace);
        let was_leaving = leaving.is_some();
        let up = match seen {
            Seen::Up => {
                leaving = None;
                true
            }
            Seen::Leaving => {
                let since = *leaving.get_or_insert_with(|| {
                    tracing::info!(sgc = %sgc, node = %node, "gateway node leaving: it answers 503, the load balancer still sends it flows; waiting for the load balancer");
                    tokio::time::Instant::now()
                });
                since.elapsed() <= settings.leaving_max
            }
            Seen::Down(rest) => {
                leaving = None;
                tokio::time::sleep(rest).await;
                false
            }
        };
        // Ask again at once after an answer the server held (one request per interval), and
        // when the node just started leaving; after anything else (a loss, a server that
        // does not hold) wait for the tick.
        let was_held = answer.is_some() && wait.is_some_and(|w| started.elapsed() >= w / 2);
        at_once = up && (was_held || (seen == Seen::Leaving && !was_leaving));
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

/// One probe, held up to `wait` by the server, answered within `wait` + `timeout`. A kept-
/// alive connection that fails before that (the server restarted: a rollout of its
/// container) is replaced once, so a restart is not taken for a loss.
async fn held_probe(
    addr: SocketAddr,
    path: &str,
    conn: &mut Option<SendRequest<Empty<Bytes>>>,
    wait: Option<Duration>,
    timeout: Duration,
) -> Option<(u16, Option<LbTold>)> {
    let deadline = tokio::time::Instant::now() + timeout + wait.unwrap_or_default();
    for _ in 0..2 {
        let reused = conn.as_ref().is_some_and(|c| !c.is_closed());
        match tokio::time::timeout_at(deadline, probe_once(addr, path, conn, wait)).await {
            Ok(Some(answer)) => return Some(answer),
            Ok(None) if reused => *conn = None,
            _ => break,
        }
    }
    // A failed or late answer leaves the connection in an unknown state.
    *conn = None;
    None
}

/// One probe: the status and what the load balancer was told (`None`: no answer). With
/// `wait`, the server may hold a 503 that long for the load balancer's prober.
async fn probe_once(
    addr: SocketAddr,
    path: &str,
    conn: &mut Option<SendRequest<Empty<Bytes>>>,
    wait: Option<Duration>,
) -> Option<(u16, Option<LbTold>)> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = connect(addr).await;
    }
    let sender = conn.as_mut()?;
    sender.ready().await.ok()?;
    let mut req = hyper::Request::get(path).header(hyper::header::HOST, addr.to_string());
    if let Some(wait) = wait {
        req = req.header(lb_told::LB_WAIT_HEADER, wait.as_millis().to_string());
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new()).ok()?)
        .await
        .ok()?;
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
    let told = LbTold::from_headers(
        header(lb_told::LB_STATUS_HEADER),
        header(lb_told::LB_SINCE_HEADER),
    );
    let status = resp.status().as_u16();
    // Read the body (a few bytes) so the connection can be kept alive.
    http_body_util::BodyExt::collect(resp.into_body())
        .await
        .ok()?;
    Some((status, told))
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
        let settings = ProbeSettings::new(
            addr.port(),
            Duration::from_millis(20),
            Duration::from_millis(500),
        );
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

    #[test]
    fn a_503_is_a_loss_only_once_the_load_balancer_was_told() {
        let grace = Duration::from_millis(150);
        let told = |status, ms| {
            Some(LbTold {
                status,
                since: Duration::from_millis(ms),
            })
        };
        assert_eq!(classify(Some((200, None)), grace), Seen::Up);
        assert_eq!(classify(Some((200, told(503, 9))), grace), Seen::Up);
        assert_eq!(classify(Some((503, told(200, 9))), grace), Seen::Leaving);
        assert_eq!(
            classify(Some((503, told(503, 50))), grace),
            Seen::Down(Duration::from_millis(100)),
            "the rest of the grace"
        );
        assert_eq!(
            classify(Some((503, told(503, 900))), grace),
            Seen::Down(Duration::ZERO)
        );
        // Without the information (an older server), a 503 is a loss as before.
        assert_eq!(
            classify(Some((503, None)), grace),
            Seen::Down(Duration::ZERO)
        );
        assert_eq!(
            classify(Some((500, None)), grace),
            Seen::Down(Duration::ZERO)
        );
        assert_eq!(classify(None, grace), Seen::Down(Duration::ZERO));
    }

    #[tokio::test]
    async fn a_leaving_node_stays_healthy_and_is_held_for_until_the_load_balancer_knows() {
        use std::sync::Mutex;
        // (status, what the load balancer was told), and the wait headers the server saw.
        let state = Arc::new(Mutex::new((503u16, 200u16)));
        let waits = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (st, w) = (state.clone(), waits.clone());
        tokio::spawn(egress_runtime::serve_requests(
            l,
            move |asked: egress_runtime::Asked| {
                let (status, told) = *st.lock().unwrap();
                if let Some(v) = asked.headers.get(lb_told::LB_WAIT_HEADER) {
                    w.lock().unwrap().push(v.to_str().unwrap().to_owned());
                }
                let mut headers = hyper::HeaderMap::new();
                headers.insert(lb_told::LB_STATUS_HEADER, told.into());
                headers.insert(lb_told::LB_SINCE_HEADER, 0u16.into());
                let answer = (
                    hyper::StatusCode::from_u16(status).unwrap(),
                    "text/plain",
                    String::new(),
                );
                async move {
                    // A held answer: the server waits a little as if for the load balancer.
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    egress_runtime::response(answer, headers)
                }
            },
            std::future::pending(),
            egress_runtime::InFlight::Abort,
        ));
        let (tx, mut rx) = mpsc::channel(16);
        let settings = ProbeSettings {
            lb_grace: Duration::from_millis(100),
            ..ProbeSettings::new(
                addr.port(),
                Duration::from_millis(100),
                Duration::from_millis(500),
            )
        };
        let mut prober = Prober::new(settings, tx);
        prober.sync(&[(SgcRef::new("ns", "gw"), "u1".to_string(), addr.ip())].into());
        for _ in 0..3 {
            assert!(rx.recv().await.unwrap().up, "leaving counts as healthy");
        }
        assert!(
            waits.lock().unwrap().iter().any(|w| w == "100"),
            "probes after the first ask to be held one interval: {waits:?}"
        );
        *state.lock().unwrap() = (503, 503);
        let mut down = false;
        for _ in 0..5 {
            if !rx.recv().await.unwrap().up {
                down = true;
                break;
            }
        }
        assert!(down, "lost once the load balancer was told 503");
    }
}
