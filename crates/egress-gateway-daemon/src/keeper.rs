//! `egress-gateway-daemon lb-probe`: the load balancer's health probe, answered from the
//! daemon's probe state file by a small process that does not restart with the daemon (its
//! own container in the daemon's pod, its own process in the simulator). The health the load
//! balancer sees is that of the data path, which lives in the kernel and outlives the
//! daemon; so a daemon restart, crash or OOM kill does not move a single flow, while a drain
//! the daemon writes (the node going away) or a daemon gone for longer than `stale_after`
//! (its state may no longer be maintained) answers 503.
//!
//! The file is checked every [`REFRESH`] (one `stat`; read when it changed), so answers never
//! wait on the file system.
//!
//! It also remembers what it answered the load balancer's own prober (by source address,
//! `--lb-prober-ips`) and tells the CNI managers, who probe the same path: a draining node's
//! 503 moves the flows only once the load balancer got it, and a manager may wait for that
//! (`egress_api::lb_told`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use egress_api::lb_told;
use egress_runtime::http::{Asked, InFlight, Reply, response, serve_requests};
use hyper::{HeaderMap, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::Answer;
use crate::lb_memory::LbMemory;
use crate::probe::answer;
use crate::probe_file::{self, ProbeFile};

/// How often the state file is checked for changes.
pub const REFRESH: Duration = Duration::from_millis(50);

/// Most requests held at once (one per CNI manager, gateway node and SGC in use is the
/// expected load); beyond, requests are answered at once, and their managers probe at
/// their interval as with a server that does not hold.
pub const MAX_HELD: usize = 8192;

/// Settings of the keeper.
#[derive(Debug, Clone)]
pub struct KeeperConfig {
    /// The daemon's probe state file.
    pub state_file: PathBuf,
    /// How old the daemon's heartbeat may be before every probe answers 503.
    pub stale_after: Duration,
    /// Source addresses of the load balancer's prober (Azure: 168.63.129.16).
    pub lb_probers: Vec<IpAddr>,
}

#[derive(Debug, Default)]
struct Cached {
    modified: Option<SystemTime>,
    file: Option<ProbeFile>,
}

/// The keeper's answer to `path` from `file` at `now`.
pub fn keeper_answer(
    path: &str,
    file: Option<&ProbeFile>,
    now: SystemTime,
    stale_after: Duration,
) -> Answer {
    match file {
        Some(f) if f.fresh(now, stale_after) => f.state.answer(path),
        other => {
            let (status, ct, body) = answer(path, |_| false);
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return (status, ct, body);
            }
            let why = match other {
                Some(_) => "the gateway daemon has not reported for too long\n",
                None => "no state from the gateway daemon yet\n",
            };
            (status, ct, why.into())
        }
    }
}

/// Re-reads the state file when it changed; true when it did.
fn refresh(config: &KeeperConfig, cache: &RwLock<Cached>) -> bool {
    let modified = std::fs::metadata(&config.state_file)
        .and_then(|m| m.modified())
        .ok();
    let known = cache.read().unwrap_or_else(|p| p.into_inner()).modified;
    if modified == known {
        return false;
    }
    let file = match modified.map(|_| probe_file::read(&config.state_file)) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            tracing::warn!("{}", egress_runtime::error_chain(&e));
            None
        }
        None => None,
    };
    *cache.write().unwrap_or_else(|p| p.into_inner()) = Cached { modified, file };
    true
}

/// What the keeper's answers read, shared by the connections and the refresher.
struct Keeper {
    config: KeeperConfig,
    cache: RwLock<Cached>,
    lb: Mutex<LbMemory>,
    /// Bumped when the file or what the load balancer was told changed (wakes waiters).
    changes: watch::Sender<u64>,
    /// Requests held now.
    held: AtomicUsize,
}

/// Counts a held request for as long as it lives.
struct HeldSlot<'a>(&'a AtomicUsize);

impl<'a> HeldSlot<'a> {
    fn take(count: &'a AtomicUsize) -> Option<Self> {
        let before = count.fetch_add(1, Ordering::SeqCst);
        let slot = Self(count);
        (before < MAX_HELD).then_some(slot)
    }
}

impl Drop for HeldSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Longest UID a probe path may name (Kubernetes UIDs have 36 characters): what a prober
/// address asks is remembered, so a spoofed one must not fill the memory with long paths.
const MAX_UID_LEN: usize = 64;

/// The UID of a probe path `/gw/<uid>`.
fn uid_of(path: &str) -> Option<&str> {
    path.strip_prefix("/gw/")
        .filter(|uid| !uid.is_empty() && uid.len() <= MAX_UID_LEN && !uid.contains('/'))
}

/// What a held answer waits to change from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// A 200: held until the node turns 503 (a drain), so the asker learns of it at once.
    Up,
    /// A 503 while the load balancer was last told 200: held until it is told something.
    Leaving,
}

impl Keeper {
    fn answer(&self, path: &str) -> Answer {
        let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
        keeper_answer(
            path,
            c.file.as_ref(),
            SystemTime::now(),
            self.config.stale_after,
        )
    }

    fn told(&self, uid: &str) -> Option<(u16, Duration)> {
        let lb = self.lb.lock().unwrap_or_else(|p| p.into_inner());
        lb.told(uid, Instant::now())
    }

    /// How `answered` may be held for `uid` (`None`: answered at once).
    fn hold_class(&self, answered: &Answer, uid: &str) -> Option<Hold> {
        match answered.0 {
            StatusCode::OK => Some(Hold::Up),
            StatusCode::SERVICE_UNAVAILABLE
                if self.told(uid).is_some_and(|(status, _)| status == 200) =>
            {
                Some(Hold::Leaving)
            }
            _ => None,
        }
    }

    /// Holds `answered` for up to `wait` while it stays in its [`Hold`] class, and returns
    /// the answer as of the end of the hold. `changes` was subscribed before `answered` was
    /// read, so a change in between is not missed.
    async fn hold(
        &self,
        path: &str,
        uid: &str,
        answered: Answer,
        wait: Duration,
        changes: &mut watch::Receiver<u64>,
    ) -> Answer {
        let Some(held) = self.hold_class(&answered, uid) else {
            return answered;
        };
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_ok_and(|r| r.is_ok())
        {
            let now = self.answer(path);
            if self.hold_class(&now, uid) != Some(held) {
                return now;
            }
        }
        // Read once more: a heartbeat going stale changes no file and wakes nobody.
        self.answer(path)
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn is_lb_prober(&self, peer: IpAddr) -> bool {
        self.config.lb_probers.contains(&peer.to_canonical())
    }

    /// The answer to one request: a load balancer prober's is answered at once and
    /// remembered; anyone else's may be held (`lb_told::LB_WAIT_HEADER`) and carries what
    /// the load balancer was last told for its UID.
    async fn reply(&self, asked: Asked) -> Reply {
        let uid = uid_of(&asked.path);
        if self.is_lb_prober(asked.peer.ip()) {
            let answered = self.answer(&asked.path);
            if let Some(uid) = uid {
                let mut lb = self.lb.lock().unwrap_or_else(|p| p.into_inner());
                let changed = lb.record(uid, answered.0.as_u16(), Instant::now());
                drop(lb);
                if changed {
                    tracing::info!(
                        uid,
                        status = answered.0.as_u16(),
                        "the load balancer's prober was told a new status"
                    );
                    self.changed();
                }
            }
            return response(answered, HeaderMap::new());
        }
        let wait = lb_told::parse_wait(
            asked
                .headers
                .get(lb_told::LB_WAIT_HEADER)
                .and_then(|v| v.to_str().ok()),
        );
        // Subscribed before looking, so a change in between is not missed.
        let mut changes = self.changes.subscribe();
        let mut answered = self.answer(&asked.path);
        if let (Some(wait), Some(uid)) = (wait, uid)
            && let Some(_slot) = HeldSlot::take(&self.held)
        {
            answered = self
                .hold(&asked.path, uid, answered, wait, &mut changes)
                .await;
        }
        let mut headers = HeaderMap::new();
        if let Some((status, since)) = uid.and_then(|u| self.told(u)) {
            let since_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
            headers.insert(lb_told::LB_STATUS_HEADER, status.into());
            headers.insert(lb_told::LB_SINCE_HEADER, since_ms.into());
        }
        response(answered, headers)
    }
}

/// Serves the probe on `listener` from the state file until `shutdown` completes.
pub async fn serve_keeper(
    listener: TcpListener,
    config: KeeperConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let keeper = Arc::new(Keeper {
        config,
        cache: RwLock::new(Cached::default()),
        lb: Mutex::new(LbMemory::default()),
        changes: watch::channel(0).0,
        held: AtomicUsize::new(0),
    });
    refresh(&keeper.config, &keeper.cache);
    let refresher = {
        let keeper = keeper.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH);
            loop {
                ticks.tick().await;
                if refresh(&keeper.config, &keeper.cache) {
                    keeper.changed();
                }
            }
        })
    };
    serve_requests(
        listener,
        move |asked| {
            let keeper = keeper.clone();
            async move { keeper.reply(asked).await }
        },
        shutdown,
        // A held request (a manager waiting for the load balancer) must not hold the stop.
        InFlight::Abort,
    )
    .await;
    refresher.abort();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::probe::ProbeSnapshot;

    #[test]
    fn answers_follow_the_file_while_it_is_fresh() {
        let now = SystemTime::now();
        let file = ProbeFile {
            state: ProbeSnapshot {
                programmed: ["u1".to_owned()].into(),
                draining: None,
            },
            heartbeat_unix_ms: probe_file::unix_ms(now) - 5_000,
            pid: 1,
        };
        let minute = Duration::from_secs(60);
        assert_eq!(
            keeper_answer("/gw/u1", Some(&file), now, minute).0,
            StatusCode::OK
        );
        assert_eq!(
            keeper_answer("/gw/u2", Some(&file), now, minute).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let stale = keeper_answer("/gw/u1", Some(&file), now, Duration::from_secs(1));
        assert_eq!(stale.0, StatusCode::SERVICE_UNAVAILABLE);
        assert!(stale.2.contains("not reported"), "{}", stale.2);
        let none = keeper_answer("/gw/u1", None, now, minute);
        assert_eq!(none.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            keeper_answer("/x", None, now, minute).0,
            StatusCode::BAD_REQUEST
        );
        let draining = ProbeFile {
            state: ProbeSnapshot {
                draining: Some("cordoned".into()),
                ..file.state.clone()
            },
            ..file
        };
        assert_eq!(
            keeper_answer("/gw/u1", Some(&draining), now, minute).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    /// One raw HTTP/1.1 GET from `source`: (status, `x-egress-lb-status` if any).
    async fn get(
        addr: std::net::SocketAddr,
        source: &str,
        path: &str,
        wait_ms: Option<u64>,
    ) -> (u16, Option<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
            .unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let wait = wait_ms
            .map(|ms| format!("{}: {ms}\r\n", lb_told::LB_WAIT_HEADER))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{wait}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        let status = text[9..12].parse().unwrap();
        let told = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}: ", lb_told::LB_STATUS_HEADER)))
            .map(str::to_owned);
        (status, told)
    }

    fn write_state(path: &std::path::Path, draining: bool) {
        let file = ProbeFile {
            state: ProbeSnapshot {
                programmed: ["u1".to_owned()].into(),
                draining: draining.then(|| "cordoned".to_owned()),
            },
            heartbeat_unix_ms: probe_file::unix_ms(SystemTime::now()),
            pid: 1,
        };
        probe_file::write(path, &file).unwrap();
    }

    /// A keeper on a loopback port serving a fresh state file of a healthy node ("u1"
    /// programmed); the load balancer probes from 127.0.0.2, managers from 127.0.0.1.
    async fn start_keeper(
        stale_after: Duration,
    ) -> (tempfile::TempDir, PathBuf, std::net::SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("lb-probe.json");
        write_state(&state, false);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = KeeperConfig {
            state_file: state.clone(),
            stale_after,
            lb_probers: vec!["127.0.0.2".parse().unwrap()],
        };
        tokio::spawn(serve_keeper(listener, config, std::future::pending()));
        (dir, state, addr)
    }

    #[test]
    fn probe_paths_name_one_bounded_uid() {
        assert_eq!(uid_of("/gw/u1"), Some("u1"));
        assert_eq!(uid_of("/gw/"), None);
        assert_eq!(uid_of("/gw/a/b"), None);
        let longest = "u".repeat(MAX_UID_LEN);
        assert_eq!(uid_of(&format!("/gw/{longest}")), Some(longest.as_str()));
        assert_eq!(uid_of(&format!("/gw/{longest}x")), None, "too long");
    }

    /// A held 200 is answered as of the end of the hold: a daemon whose heartbeat went stale
    /// meanwhile (no file change wakes anyone) is reported down, not up.
    #[tokio::test]
    async fn a_hold_that_runs_out_answers_what_is_true_then() {
        let (_dir, _state, addr) = start_keeper(Duration::from_millis(600)).await;
        assert_eq!(get(addr, "127.0.0.1", "/gw/u1", None).await.0, 200);
        let (status, _) = get(addr, "127.0.0.1", "/gw/u1", Some(1_000)).await;
        assert_eq!(
            status, 503,
            "the heartbeat is 1 s old after the hold, over 0.6 s"
        );
    }

    #[tokio::test]
    async fn managers_learn_what_the_load_balancer_was_told_and_may_wait_for_it() {
        let (_dir, state, addr) = start_keeper(Duration::from_secs(60)).await;
        let (lb, manager) = ("127.0.0.2", "127.0.0.1");
        // Nothing told yet: no header.
        assert_eq!(get(addr, manager, "/gw/u1", None).await, (200, None));
        assert_eq!(get(addr, lb, "/gw/u1", None).await, (200, None));
        assert_eq!(
            get(addr, manager, "/gw/u1", None).await,
            (200, Some("200".into()))
        );
        // A manager's held probe (5 s) of a healthy node is answered as soon as the node
        // drains (the file is re-read every 50 ms), while the load balancer was told 200.
        let waiting = tokio::spawn(async move {
            let t = Instant::now();
            (get(addr, manager, "/gw/u1", Some(5_000)).await, t.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "a 200 is held until it changes");
        write_state(&state, true);
        let (answer, took) = waiting.await.unwrap();
        assert_eq!(answer, (503, Some("200".into())));
        assert!(
            took < Duration::from_secs(4),
            "woken by the drain: {took:?}"
        );
        // A manager waiting (5 s) is answered as soon as the load balancer's prober is.
        let waiting = tokio::spawn(async move {
            let t = Instant::now();
            (get(addr, manager, "/gw/u1", Some(5_000)).await, t.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "held while the load balancer was told 200"
        );
        assert_eq!(get(addr, lb, "/gw/u1", None).await.0, 503);
        let (answer, took) = waiting.await.unwrap();
        assert_eq!(answer, (503, Some("503".into())));
        assert!(
            took < Duration::from_secs(4),
            "woken by the change: {took:?}"
        );
        // Once the load balancer knows, nobody waits; other paths are not affected.
        assert_eq!(
            get(addr, manager, "/gw/u1", Some(5_000)).await,
            (503, Some("503".into()))
        );
        assert_eq!(
            get(addr, manager, "/gw/u2", Some(5_000)).await,
            (503, None),
            "never told anything about u2: no wait"
        );
    }
}
