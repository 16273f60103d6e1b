//! Pure: what happens to this node's pod tunnels of one StaticGatewayConfiguration after the
//! healthy set of its gateways changed (an *episode*), decided from each tunnel's WireGuard
//! counters. No I/O: the caller reads counters and carries out the [`Action`]s.
//!
//! Every tunnel of the SGC is *reset* once, spread over [`Timing::spread`]: its gateway peer
//! is re-created with the same configuration, which drops the session and nothing else. An
//! idle tunnel then costs nothing until it sends; a busy one starts a handshake with its next
//! packet, which the load balancer delivers to whichever gateway it now chooses. A tunnel
//! that sent an initiation but completed no handshake within [`Timing::retry`] (the load
//! balancer still points at the dead gateway, or the initiation was lost) is *kicked*: the
//! peer is re-created with a keepalive, which sends a fresh initiation at once (WireGuard
//! itself would wait 5 s). Further kicks back off (each wait doubles, up to
//! [`Timing::retry_max`]): a kick that went unanswered because the surviving gateway is
//! busy must not add to its queue at a fixed rate, since past 1/8 of its handshake queue a
//! WireGuard gateway answers only with cookie replies, which a re-created peer throws away
//! (docs/design.md, "Thousands of pods at once"). Until the episode ends
//! ([`Timing::settle`], longer than the load balancer can take to notice the same change), a
//! tunnel whose handshake completed is still watched: one that keeps sending without
//! receiving for [`Timing::dead_after`] lost its session to a later re-hash and is kicked
//! too. Keepalives are switched off again after the handshake: no idle traffic.
//!
//! Counters are read only when a decision may be due (a read wakes the pod's WireGuard; on
//! a node with hundreds of pods the reads are what the episode costs): a reset tunnel is
//! read every [`Timing::poll_reset`] until it sends, then when its retry is due; a watched
//! one every [`Timing::poll_quiet`] while nothing is suspicious ([`Timing::poll_spared`] for
//! one the change spared), every [`Timing::poll_watch`] once it sent without an answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::health::SgcRef;

/// Timing of the episode logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The resets of one change are spread uniformly over [`Timing::spread_per_tunnel`] per
    /// tunnel, at most this window: a node's busy pods then do not all send their initiation
    /// in the same millisecond, and a lone pod is not delayed for nothing.
    pub spread: Duration,
    /// Share of the spread per tunnel.
    pub spread_per_tunnel: Duration,
    /// A reset tunnel that sent an initiation but completed no handshake is kicked after
    /// this long (±25 %), and again as long as it has none, each time waiting twice as long
    /// as before, up to [`Timing::retry_max`].
    pub retry: Duration,
    /// The longest wait between two kicks of a tunnel without a handshake. It bounds how
    /// late the first kick after the load balancer moved can come (±25 %), so it stays
    /// below the second the failover may take after the load balancer's detection.
    pub retry_max: Duration,
    /// A watched tunnel that sends without receiving anything for this long is kicked;
    /// each further time in the same episode waits twice as long (a one-way flow that never
    /// gets answers is kicked a few times, not every `dead_after`).
    pub dead_after: Duration,
    /// How long after a change the SGC's tunnels are watched.
    pub settle: Duration,
    /// Counter reads of a reset tunnel that has sent nothing yet (once it sent, its next
    /// read is when its retry is due).
    pub poll_reset: Duration,
    /// Counter reads of a watched tunnel that sent without an answer since the last read.
    pub poll_watch: Duration,
    /// Counter reads of a watched tunnel that got answers (or sent nothing) since the last
    /// read, until the episode ends.
    pub poll_quiet: Duration,
    /// As `poll_quiet`, for a tunnel spared because a surviving gateway node holds its
    /// session: nothing is expected to happen to it, and at hundreds of pods the reads are
    /// what the episode costs while the survivors are busiest.
    pub poll_spared: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            spread: Duration::from_millis(200),
            spread_per_tunnel: Duration::from_millis(1),
            retry: Duration::from_millis(300),
            retry_max: Duration::from_millis(700),
            // Counted from the first read that saw sends without an answer, which comes up to
            // `poll_quiet` after the silence began: a moved flow (a drain, a later re-hash)
            // is kicked within ~0.5 s of the move. Only a flow that sends for this long and
            // receives nothing at all (not even a TCP ACK) is suspect, so false kicks need a
            // one-way flow, and cost one handshake with nothing lost (WireGuard queues the
            // packets meanwhile).
            dead_after: Duration::from_millis(300),
            settle: Duration::from_secs(15),
            poll_reset: Duration::from_millis(200),
            poll_watch: Duration::from_millis(100),
            poll_quiet: Duration::from_millis(200),
            poll_spared: Duration::from_secs(1),
        }
    }
}

/// What to do to one tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Re-create the gateway peer (dropping its session); with `kick`, with a 1 s keepalive
    /// so that an initiation goes out at once.
    Reset {
        /// Send an initiation now.
        kick: bool,
    },
    /// Switch the keepalive of a kicked tunnel off again.
    KeepaliveOff,
}

/// The counters of a tunnel's gateway peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunnelStats {
    /// A handshake completed since the peer was (re-)created.
    pub handshake: bool,
    /// Bytes received from the gateway (handshake responses included).
    pub rx: u64,
    /// Bytes sent to the gateway (initiations included).
    pub tx: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The reset is due at [`Watch::due`].
    Pending,
    /// Reset; waiting for the tunnel's next handshake. `retry_at` is set once an initiation
    /// went out (the counters show bytes sent); `kicks` counts the kicks so far (each
    /// doubles the next wait).
    Reset {
        retry_at: Option<Instant>,
        kicks: u32,
    },
    /// Handshake done; watched for a session the load balancer moved away later.
    Watching {
        counters: Option<(u64, u64)>,
        unanswered_since: Option<Instant>,
    },
}

#[derive(Debug, Clone)]
struct Watch {
    sgc: SgcRef,
    phase: Phase,
    due: Instant,
    keepalive_on: bool,
    /// Kicks for unanswered sends in this episode (each doubles the next wait).
    dead_kicks: u32,
    /// Spared by the change (its session is on a survivor): read at `poll_spared`.
    spared: bool,
}

/// The tunnels under watch, by container ID.
#[derive(Debug)]
pub struct Episodes {
    timing: Timing,
    ends: BTreeMap<SgcRef, Instant>,
    watches: BTreeMap<String, Watch>,
}

/// A source of uniform random numbers in `[0, 1)` (jitter), injectable for tests.
pub type Jitter<'a> = &'a mut dyn FnMut() -> f64;

impl Episodes {
    /// No episode yet.
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            ends: BTreeMap::new(),
            watches: BTreeMap::new(),
        }
    }

    /// The timing in use.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The healthy set of `sgc` changed: every one of `tunnels` is reset (spread), then
    /// watched until the episode ends. With no healthy gateway left nothing can be won by
    /// resetting; the SGC's watches end instead (keepalives switched off) until one is
    /// healthy again, which is a change of its own.
    pub fn start(
        &mut self,
        sgc: &SgcRef,
        healthy: bool,
        tunnels: impl IntoIterator<Item = String>,
        now: Instant,
        jitter: Jitter<'_>,
    ) -> Vec<(String, Action)> {
        if !healthy {
            self.ends.remove(sgc);
            return self.drop_where(|w| w.sgc == *sgc);
        }
        self.ends.insert(sgc.clone(), now + self.timing.settle);
        let tunnels: Vec<String> = tunnels.into_iter().collect();
        let spread = self
            .timing
            .spread_per_tunnel
            .saturating_mul(u32::try_from(tunnels.len()).unwrap_or(u32::MAX))
            .min(self.timing.spread);
        for id in tunnels {
            let keepalive_on = self.watches.get(&id).is_some_and(|w| w.keepalive_on);
            let delay = spread.mul_f64(jitter().clamp(0.0, 1.0));
            self.watches.insert(
                id,
                Watch {
                    sgc: sgc.clone(),
                    phase: Phase::Pending,
                    due: now + delay,
                    keepalive_on,
                    dead_kicks: 0,
                    spared: false,
                },
            );
        }
        Vec::new()
    }

    /// A tunnel that appeared during an episode of its SGC (an ADD that completed meanwhile):
    /// its handshake went where the load balancer points now, so it is only watched.
    pub fn adopt(&mut self, sgc: &SgcRef, id: &str, now: Instant) {
        self.watch_only(sgc, id, now, false);
    }

    /// A tunnel the change spared (its session is on a surviving gateway node): only
    /// watched, at `poll_spared`, in case the load balancer moves its flow after all. Its
    /// first read (the baseline) is `poll_spared` away too, not now: at failure time the
    /// resets are what cannot wait, and reading 80 spared tunnels first delayed them by
    /// 0.3 s at 500 pods (docs/benchmarks.md).
    pub fn spare(&mut self, sgc: &SgcRef, id: &str, now: Instant) {
        self.watch_only(sgc, id, now + self.timing.poll_spared, true);
    }

    fn watch_only(&mut self, sgc: &SgcRef, id: &str, due: Instant, spared: bool) {
        if self.ends.contains_key(sgc) && !self.watches.contains_key(id) {
            self.watches.insert(
                id.to_owned(),
                Watch {
                    sgc: sgc.clone(),
                    phase: Phase::Watching {
                        counters: None,
                        unanswered_since: None,
                    },
                    due,
                    keepalive_on: false,
                    dead_kicks: 0,
                    spared,
                },
            );
        }
    }

    /// A tunnel that is gone (DEL, or its device vanished), or whose action failed.
    pub fn forget(&mut self, id: &str) {
        self.watches.remove(id);
    }

    /// Whether `sgc` is in an episode.
    pub fn active(&self, sgc: &SgcRef) -> bool {
        self.ends.contains_key(sgc)
    }

    /// Whether any tunnel is watched.
    pub fn is_idle(&self) -> bool {
        self.watches.is_empty() && self.ends.is_empty()
    }

    /// Resets that are due now (no counters needed): the tunnels move to waiting for their
    /// handshake.
    pub fn due_resets(&mut self, now: Instant) -> Vec<(String, Action)> {
        let mut out = Vec::new();
        for (id, w) in &mut self.watches {
            if w.phase == Phase::Pending && w.due <= now {
                w.phase = Phase::Reset {
                    retry_at: None,
                    kicks: 0,
                };
                w.due = now + self.timing.poll_reset;
                out.push((id.clone(), Action::Reset { kick: false }));
            }
        }
        out
    }

    /// Tunnels whose counters should be read now.
    pub fn due_polls(&self, now: Instant) -> Vec<String> {
        self.watches
            .iter()
            .filter(|(_, w)| w.phase != Phase::Pending && w.due <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Decides on a tunnel's counters (`None`: the device or its peer is gone).
    pub fn on_stats(
        &mut self,
        id: &str,
        stats: Option<TunnelStats>,
        now: Instant,
        jitter: Jitter<'_>,
    ) -> Option<Action> {
        let Some(stats) = stats else {
            self.forget(id);
            return None;
        };
        let timing = self.timing;
        let w = self.watches.get_mut(id)?;
        let (phase, action) = match w.phase {
            Phase::Pending => return None,
            Phase::Reset { retry_at, kicks } => reset_step(
                &timing,
                stats,
                (retry_at, kicks),
                w.keepalive_on,
                now,
                jitter,
            ),
            Phase::Watching {
                counters,
                unanswered_since,
            } => {
                let dead_after = timing.dead_after * 2u32.saturating_pow(w.dead_kicks.min(8));
                let step = watch_step(
                    &timing,
                    stats,
                    counters,
                    unanswered_since,
                    dead_after,
                    now,
                    jitter,
                );
                if step.1.is_some() {
                    w.dead_kicks += 1;
                }
                step
            }
        };
        w.phase = phase;
        match action {
            Some(Action::Reset { kick: true }) => w.keepalive_on = true,
            Some(Action::KeepaliveOff) => w.keepalive_on = false,
            _ => {}
        }
        w.due = match w.phase {
            Phase::Watching {
                unanswered_since: Some(_),
                ..
            } => now + timing.poll_watch,
            Phase::Watching { .. } if w.spared => now + timing.poll_spared,
            Phase::Watching { .. } => now + timing.poll_quiet,
            // Sent, no handshake yet: nothing to decide before the retry.
            Phase::Reset {
                retry_at: Some(at), ..
            } => at.max(now + timing.poll_reset),
            _ => now + timing.poll_reset,
        };
        action
    }

    /// Ends the episodes that are over: their tunnels are left to WireGuard's own timers,
    /// with any keepalive this watch switched on switched off again.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Action)> {
        let over: Vec<SgcRef> = self
            .ends
            .iter()
            .filter(|(_, end)| **end <= now)
            .map(|(sgc, _)| sgc.clone())
            .collect();
        let mut out = Vec::new();
        for sgc in over {
            self.ends.remove(&sgc);
            out.extend(self.drop_where(|w| w.sgc == sgc));
        }
        out
    }

    /// The earliest moment something is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.watches
            .values()
            .map(|w| w.due)
            .chain(self.ends.values().copied())
            .min()
    }

    fn drop_where(&mut self, pred: impl Fn(&Watch) -> bool) -> Vec<(String, Action)> {
        let ids: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, w)| pred(w))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(w) = self.watches.remove(&id)
                && w.keepalive_on
            {
                out.push((id, Action::KeepaliveOff));
            }
        }
        out
    }
}

/// The wait before kick number `kicks + 1`: `retry`, doubled per kick so far, at most
/// `retry_max`, ±25 %.
fn retry_delay(timing: &Timing, kicks: u32, jitter: Jitter<'_>) -> Duration {
    let nominal = timing
        .retry
        .saturating_mul(2u32.saturating_pow(kicks.min(16)))
        .min(timing.retry_max.max(timing.retry));
    nominal.mul_f64(0.75 + 0.5 * jitter().clamp(0.0, 1.0))
}

/// A kick sends an initiation at once; the next one follows after the backed-off wait.
fn kicked(
    timing: &Timing,
    kicks: u32,
    now: Instant,
    jitter: Jitter<'_>,
) -> (Phase, Option<Action>) {
    let kicks = kicks.saturating_add(1);
    (
        Phase::Reset {
            retry_at: Some(now + retry_delay(timing, kicks, jitter)),
            kicks,
        },
        Some(Action::Reset { kick: true }),
    )
}

fn reset_step(
    timing: &Timing,
    stats: TunnelStats,
    (retry_at, kicks): (Option<Instant>, u32),
    keepalive_on: bool,
    now: Instant,
    jitter: Jitter<'_>,
) -> (Phase, Option<Action>) {
    if stats.handshake {
        let phase = Phase::Watching {
            counters: Some((stats.rx, stats.tx)),
            unanswered_since: None,
        };
        return (phase, keepalive_on.then_some(Action::KeepaliveOff));
    }
    if stats.tx == 0 {
        // Idle since the reset: its next packet will start the handshake.
        return (Phase::Reset { retry_at, kicks }, None);
    }
    let retry_at = retry_at.unwrap_or_else(|| now + retry_delay(timing, kicks, jitter));
    if now >= retry_at {
        return kicked(timing, kicks, now, jitter);
    }
    (
        Phase::Reset {
            retry_at: Some(retry_at),
            kicks,
        },
        None,
    )
}

fn watch_step(
    timing: &Timing,
    stats: TunnelStats,
    counters: Option<(u64, u64)>,
    unanswered_since: Option<Instant>,
    dead_after: Duration,
    now: Instant,
    jitter: Jitter<'_>,
) -> (Phase, Option<Action>) {
    let watching = |counters, unanswered_since| Phase::Watching {
        counters: Some(counters),
        unanswered_since,
    };
    let Some((rx, tx)) = counters.filter(|(rx, tx)| stats.rx >= *rx && stats.tx >= *tx) else {
        // First read, or the peer was re-created meanwhile: a new baseline.
        return (watching((stats.rx, stats.tx), None), None);
    };
    if stats.rx > rx {
        return (watching((stats.rx, stats.tx), None), None);
    }
    if stats.tx == tx {
        return (watching((rx, tx), unanswered_since), None);
    }
    let since = unanswered_since.unwrap_or(now);
    if now.duration_since(since) >= dead_after {
        // The new session's handshake is a first attempt: no backoff carried over.
        return kicked(timing, 0, now, jitter);
    }
    (watching((rx, stats.tx), Some(since)), None)
}

#[cfg(test)]
#[path = "episode_tests.rs"]
mod tests;
