//! What each pod's egress does around a failure (a gateway node killed, a node drained): from
//! inside every pod's namespace, a UDP datagram to the internet server's source echo every
//! `udp_period` (which answers with the address it saw and when the datagram arrived), and,
//! from the moment of the failure, a new TCP connection to the raw echo every `tcp_period`
//! (several in flight, each with its own timeout). Per pod it reports the time from the
//! failure to the first datagram the internet saw from another egress IP (the server's
//! arrival time: same host, same clock) and to the first new connection that completed from
//! another egress IP; pods whose gateway did not fail report their longest silence instead.
//!
//! One thread per pod enters the pod's namespace once and runs a small current-thread
//! runtime there, so every socket it opens belongs to the pod.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::netns::{self, NetnsError};
use crate::services;

/// How often each pod sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    /// Period of the UDP datagrams (before and after the failure).
    pub udp_period: Duration,
    /// Period of new TCP connections after the failure.
    pub tcp_period: Duration,
    /// Timeout of one connection (shortened while the in-flight cap would otherwise hold
    /// only stuck attempts: see `attempt_timeout`).
    pub tcp_timeout: Duration,
    /// How long pods whose gateway did not fail are watched after it.
    pub survivor_watch: Duration,
    /// From the failure until it has resumed, a pod whose gateway failed sends a datagram
    /// this often (`None`: `udp_period`), and opens a connection as soon as a datagram is
    /// answered from a new address (besides every `tcp_period`). Its traffic goes nowhere
    /// meanwhile (or waits in its WireGuard for the handshake), so a short period costs the
    /// survivors nothing, and it measures when egress resumed to this resolution instead of
    /// to `udp_period`: a pod sending every 500 ms can only show that it resumed at its
    /// next datagram, and one connecting every second at its next connection.
    pub resume_period: Option<Duration>,
}

impl WatchSettings {
    /// Periods that keep the total rate near 10,000 datagrams a second (the measurement must
    /// not be the load): 20 ms up to 50 pods, longer beyond.
    pub fn for_pods(n: usize) -> Self {
        let udp = Duration::from_millis(u64::try_from(n / 5).unwrap_or(u64::MAX).max(20));
        Self {
            udp_period: udp,
            tcp_period: udp * 2,
            tcp_timeout: Duration::from_secs(3),
            survivor_watch: Duration::from_secs(3),
            resume_period: None,
        }
    }
}

/// One pod's egress around the failure.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodEgress {
    /// Pod (`namespace/name`).
    pub pod: String,
    /// Egress IP the internet saw last before the failure.
    pub before: Option<String>,
    /// Whether its gateway was the failed one.
    pub failed_over: bool,
    /// From the failure to the first datagram seen from another egress IP.
    pub first_packet_new_ms: Option<u64>,
    /// The egress IP seen then.
    pub after: Option<String>,
    /// From the failure to the first new connection completed from another egress IP.
    pub first_connection_new_ms: Option<u64>,
    /// Longest time after the failure without an answer to a datagram.
    pub longest_gap_ms: u64,
}

/// The running watch.
#[derive(Debug)]
pub struct EgressWatch {
    mark: Arc<Mark>,
    threads: Vec<JoinHandle<PodEgress>>,
}

#[derive(Debug, Default)]
struct Mark {
    stop: AtomicBool,
    /// Unix nanoseconds of the failure (0: not yet).
    at_ns: AtomicU64,
    /// The failed gateway's egress IP.
    failed_ip: std::sync::Mutex<Option<String>>,
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

impl EgressWatch {
    /// Starts sending datagrams from every `(pod name, pod namespace)`.
    pub fn start(
        pods: &[(String, String)],
        server: Ipv4Addr,
        settings: WatchSettings,
    ) -> Result<Self, NetnsError> {
        let mark = Arc::new(Mark::default());
        let mut threads = Vec::new();
        for (pod, ns) in pods {
            let file = std::fs::File::open(netns::path(ns)).map_err(|e| NetnsError::Enter {
                name: ns.clone(),
                reason: e.to_string(),
            })?;
            let (pod, mark) = (pod.clone(), mark.clone());
            threads.push(std::thread::spawn(move || {
                let mut out = PodEgress {
                    pod: pod.clone(),
                    ..PodEgress::default()
                };
                if nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                    return out;
                }
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return out;
                };
                rt.block_on(pod_loop(&mut out, server, settings, &mark));
                out
            }));
        }
        Ok(Self { mark, threads })
    }

    /// Marks the failure now; `failed_ip` is the failed gateway's egress IP (pods that left
    /// from it must move; the others are only watched for silences).
    pub fn mark(&self, failed_ip: &str) -> SystemTime {
        if let Ok(mut f) = self.mark.failed_ip.lock() {
            *f = Some(failed_ip.to_owned());
        }
        let now = SystemTime::now();
        self.mark.at_ns.store(unix_ns(now), Ordering::SeqCst);
        now
    }

    /// Waits until every pod is done (moved and measured, or watched long enough) or
    /// `timeout` passed, then stops them and returns what each saw.
    pub fn finish(self, timeout: Duration) -> Vec<PodEgress> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && self.threads.iter().any(|t| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.mark.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .collect()
    }
}

/// Connections a pod has in flight at most: bounds the sockets of hundreds of pods whose
/// SYNs go nowhere during the failure.
const MAX_ATTEMPTS_IN_FLIGHT: usize = 16;

/// How long one connection attempt may take: `tcp_timeout`, but never longer than the
/// in-flight cap's worth of `tcp_period`s. A SYN sent into the outage is retransmitted only
/// after 1 s; were it kept longer than the cap covers, the pod would hold its cap of stuck
/// attempts and start no new connection once egress is back, and the first new connection
/// would be the oldest SYN's retransmission, up to 1 s late (a drain at 1 pod, 40 ms apart:
/// 16 attempts cover 640 ms, so an outage longer than that measured the retransmission).
/// Abandoning the oldest keeps one new attempt starting every `tcp_period` throughout.
fn attempt_timeout(settings: WatchSettings) -> Duration {
    let cap = u32::try_from(MAX_ATTEMPTS_IN_FLIGHT).unwrap_or(u32::MAX);
    settings
        .tcp_timeout
        .min(settings.tcp_period.saturating_mul(cap))
}

/// A TCP attempt: connect, read the line the raw echo writes (`ip:port`).
async fn connect_once(server: Ipv4Addr, timeout: Duration) -> (u64, Option<String>) {
    let attempt = async {
        let mut s =
            tokio::net::TcpStream::connect(SocketAddr::from((server, services::RAW_ECHO_PORT)))
                .await
                .ok()?;
        let mut line = String::new();
        s.read_to_string(&mut line).await.ok()?;
        line.trim().rsplit_once(':').map(|(ip, _)| ip.to_owned())
    };
    let ip = tokio::time::timeout(timeout, attempt).await.ok().flatten();
    (unix_ns(SystemTime::now()), ip)
}

fn parse_reply(text: &str) -> Option<(String, u64)> {
    let mut parts = text.split_whitespace();
    let _seq = parts.next()?;
    let (ip, _) = parts.next()?.rsplit_once(':')?;
    let at: u64 = parts.next()?.parse().ok()?;
    Some((ip.to_owned(), at))
}

/// A tick every `period`; ticks missed (a busy machine, attempts at their cap) are not
/// made up in a burst.
fn ticker(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

async fn pod_loop(out: &mut PodEgress, server: Ipv4Addr, settings: WatchSettings, mark: &Mark) {
    let Ok(udp) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else {
        return;
    };
    if udp
        .connect(SocketAddr::from((server, services::UDP_ECHO_PORT)))
        .await
        .is_err()
    {
        return;
    }
    let attempt_timeout = attempt_timeout(settings);
    let mut udp_tick = ticker(settings.udp_period);
    let mut tcp_tick = ticker(settings.tcp_period);
    let mut attempts = FuturesUnordered::new();
    let mut last_answer_ns = 0u64;
    let mut seq = 0u64;
    let mut buf = [0u8; 512];
    let mut classified = false;
    while !mark.stop.load(Ordering::SeqCst) {
        let at = mark.at_ns.load(Ordering::SeqCst);
        if at != 0 && !classified {
            let failed = mark.failed_ip.lock().ok().and_then(|f| f.clone());
            out.failed_over = out.before.is_some() && out.before == failed;
            classified = true;
            if let (true, Some(period)) = (out.failed_over, settings.resume_period) {
                udp_tick = ticker(period);
            }
        }
        if at != 0 && done(out, at, settings) {
            return;
        }
        tokio::select! {
            _ = udp_tick.tick() => {
                seq += 1;
                let _ = udp.send(seq.to_string().as_bytes()).await;
            }
            Ok(n) = udp.recv(&mut buf) => {
                let Some((ip, seen)) = parse_reply(&String::from_utf8_lossy(&buf[..n])) else {
                    continue;
                };
                if at == 0 || seen < at {
                    out.before = Some(ip);
                } else {
                    if out.before.as_deref() != Some(ip.as_str()) && out.first_packet_new_ms.is_none() {
                        out.first_packet_new_ms = Some(ms(seen - at));
                        out.after = Some(ip);
                        if settings.resume_period.is_some() {
                            if out.first_connection_new_ms.is_none() {
                                attempts.push(connect_once(server, attempt_timeout));
                            }
                            udp_tick = ticker(settings.udp_period);
                        }
                    }
                    out.longest_gap_ms = out.longest_gap_ms.max(ms(seen - last_answer_ns.max(at)));
                }
                last_answer_ns = seen;
            }
            _ = tcp_tick.tick(), if at != 0 && attempts.len() < MAX_ATTEMPTS_IN_FLIGHT => {
                attempts.push(connect_once(server, attempt_timeout));
            }
            Some((end, ip)) = attempts.next() => {
                if let Some(ip) = ip
                    && end >= at
                    && out.before.as_deref() != Some(ip.as_str())
                    && out.first_connection_new_ms.is_none()
                {
                    out.first_connection_new_ms = Some(ms(end - at));
                }
            }
        }
    }
}

/// A pod that failed over is done once both firsts are measured; the others after
/// `survivor_watch`.
fn done(out: &PodEgress, at: u64, settings: WatchSettings) -> bool {
    if out.failed_over || out.first_packet_new_ms.is_some() {
        return out.first_packet_new_ms.is_some() && out.first_connection_new_ms.is_some();
    }
    let watched = unix_ns(SystemTime::now()).saturating_sub(at);
    u128::from(watched) >= settings.survivor_watch.as_nanos()
}

/// The `p`-th percentile (0–100) of `values` (nearest rank), if any.
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn replies_and_percentiles_parse() {
        assert_eq!(
            parse_reply("12 203.0.113.1:40000 1700000000000000000"),
            Some(("203.0.113.1".to_owned(), 1_700_000_000_000_000_000))
        );
        assert_eq!(parse_reply("12 nonsense"), None);
        assert_eq!(percentile(&[5, 1, 3, 2, 4], 50.0), Some(3));
        assert_eq!(percentile(&[5, 1, 3, 2, 4], 95.0), Some(5));
        assert_eq!(percentile(&[7], 100.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        let s = WatchSettings::for_pods(500);
        assert_eq!(s.udp_period, Duration::from_millis(100));
        assert_eq!(
            WatchSettings::for_pods(1).udp_period,
            Duration::from_millis(20)
        );
        // One pod: 16 attempts 40 ms apart cover 640 ms, less than a SYN's first
        // retransmission; 500 pods (200 ms apart) keep the full timeout.
        assert_eq!(
            attempt_timeout(WatchSettings::for_pods(1)),
            Duration::from_millis(640)
        );
        assert_eq!(attempt_timeout(s), Duration::from_secs(3));
    }
}
