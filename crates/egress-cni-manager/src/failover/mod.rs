//! Gateway failover for this node's pod tunnels (why and how: docs/design.md, "Failover").
//!
//! A pod's WireGuard keeps its session with the gateway that answered its last handshake.
//! When the internal load balancer moves the pod's flow to another gateway node (its
//! gateway died, drained, or another one turned healthy and the 5-tuple hash changed), that
//! node has the same key but not the session and drops the pod's packets, and WireGuard
//! itself starts a new handshake only after 15 s. So the manager watches what the load
//! balancer watches, the gateways' health probes, and re-handshakes its pods' tunnels of an
//! SGC whenever the healthy set of that SGC's gateways changes.
//!
//! Phases, each a module: `records` (observe: the node's established tunnels), `targets` and
//! `prober` (observe: where and how the gateways answer), `sessions` (observe: which gateway
//! node holds each tunnel's session; pure: which tunnels a loss spares), `health` (pure: the
//! healthy set and its changes), `episode` (pure: what to do to each tunnel, from its
//! counters), `tunnels` (apply: read counters, re-create a peer). This module runs them in
//! one loop.

pub mod episode;
pub mod health;
pub mod prober;
pub mod records;
pub mod sessions;
pub mod targets;
pub mod tunnels;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_api::GatewayVMConfiguration;
use egress_cni_proto::TunnelRecord;
use futures::StreamExt;
use kube::Api;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use episode::{Action, Episodes, Timing, TunnelStats};
use health::{HealthBook, HealthChange, SgcRef};
use prober::{ProbeResult, ProbeSettings, Prober};
use records::RecordScanner;
use sessions::SessionMap;
use targets::{GatewayMap, UidCache};
use tunnels::{DataplaneTunnels, PodTunnels};

/// Counter reads in flight at once (each is one netlink or UAPI round trip).
const READ_CONCURRENCY: usize = 16;
/// Resets and kicks in flight at once. They are what failover waits for, and each waits
/// mostly for the pod's WireGuard to be scheduled: at 500 pods on a busy node one took
/// 20–130 ms, so 65 resets at 16 at a time took 0.4 s (docs/benchmarks.md).
const ACTION_CONCURRENCY: usize = 64;
/// How often the records directory is checked (a stat; re-read only when it changed).
const RESCAN: Duration = Duration::from_secs(1);
/// Every this many checks the records are re-read regardless of the directory's time.
const FORCED_RESCAN_EVERY: u32 = 30;

/// Settings of the failover loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverSettings {
    /// How the gateways are probed.
    pub probe: ProbeSettings,
    /// What happens to tunnels after a change.
    pub timing: Timing,
    /// Port of the gateway daemons' sessions query (their health port); `None`: every
    /// tunnel of an SGC is reset when one of its gateway nodes is lost.
    pub sessions_port: Option<u16>,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            probe: ProbeSettings::new(
                egress_api::constants::HEALTH_PROBE_PORT,
                Duration::from_millis(500),
                Duration::from_millis(500),
            ),
            timing: Timing::default(),
            sessions_port: Some(egress_api::sessions::DEFAULT_PORT),
        }
    }
}

/// Failover as the manager runs it: settings and the tunnel executor.
#[derive(Clone)]
pub struct FailoverOptions {
    /// Settings.
    pub settings: FailoverSettings,
    /// Reads and re-creates pod tunnels (the real data plane, or a fake in tests).
    pub tunnels: Arc<dyn PodTunnels>,
}

impl std::fmt::Debug for FailoverOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverOptions")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for FailoverOptions {
    fn default() -> Self {
        Self {
            settings: FailoverSettings::default(),
            tunnels: Arc::new(DataplaneTunnels),
        }
    }
}

/// The SGC a record belongs to (`None` for records of plugins that did not record the pod).
fn sgc_of(r: &TunnelRecord) -> Option<SgcRef> {
    (!r.pod_namespace.is_empty()).then(|| SgcRef::new(&r.pod_namespace, &r.gateway))
}

struct Loop {
    options: FailoverOptions,
    client: kube::Client,
    metrics: Metrics,
    scanner: RecordScanner,
    tunnels: BTreeMap<String, TunnelRecord>,
    gateways: watch::Receiver<GatewayMap>,
    uids: UidCache,
    health: HealthBook,
    prober: Prober,
    episodes: Episodes,
    scans: u32,
    first_scan: bool,
    /// Where each SGC's tunnels held their sessions at the last refresh (only while its
    /// healthy set is unchanged).
    sessions: BTreeMap<SgcRef, SessionMap>,
    /// When each SGC's healthy set last changed (refreshes started before are stale).
    changed_at: BTreeMap<SgcRef, Instant>,
    /// SGCs whose last refresh failed (logged once per failing spell).
    refresh_failing: BTreeSet<SgcRef>,
    refreshed: mpsc::Sender<Refreshed>,
    /// When the next sessions refresh starts.
    next_refresh: Instant,
}

/// A finished sessions refresh of an SGC.
type Refreshed = (SgcRef, Result<SessionMap, sessions::QueryError>);

/// Runs failover until cancelled: watches GatewayVMConfigurations, probes the gateways of
/// the SGCs whose tunnels are recorded in `records_dir`, and re-handshakes those tunnels
/// when an SGC's healthy set changes.
pub async fn run(
    options: FailoverOptions,
    client: kube::Client,
    records_dir: PathBuf,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let (gateways_tx, gateways) = watch::channel(GatewayMap::new());
    tokio::spawn(targets::watch_gateways(
        Api::<GatewayVMConfiguration>::all(client.clone()),
        gateways_tx,
        cancel.clone(),
    ));
    let (results_tx, mut results) = mpsc::channel::<ProbeResult>(1024);
    let (refreshed, mut refreshes) = mpsc::channel::<Refreshed>(64);
    let mut l = Loop {
        prober: Prober::new(options.settings.probe, results_tx),
        episodes: Episodes::new(options.settings.timing),
        options,
        client,
        metrics,
        scanner: RecordScanner::new(records_dir),
        tunnels: BTreeMap::new(),
        gateways,
        uids: UidCache::default(),
        health: HealthBook::default(),
        scans: 0,
        first_scan: true,
        sessions: BTreeMap::new(),
        changed_at: BTreeMap::new(),
        refresh_failing: BTreeSet::new(),
        refreshed,
        next_refresh: Instant::now() + sessions::REFRESH.mul_f64(fastrand::f64() / 5.0),
    };
    tracing::info!(records = %l.scanner.dir().display(), "gateway failover watching");
    let mut next_scan = Instant::now();
    loop {
        let wake = l
            .episodes
            .next_due()
            .map_or(next_scan, |t| t.min(next_scan))
            .min(l.next_refresh);
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(r) = results.recv() => {
                let change = l.health.record(&r.sgc, &r.uid, r.node, r.up);
                l.publish_health(&r.sgc);
                l.handle_changes(change.into_iter().collect()).await;
            }
            Some((sgc, result)) = refreshes.recv() => l.refreshed(sgc, result),
            Ok(()) = l.gateways.changed() => l.refresh_targets().await,
            () = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= next_scan {
                    next_scan = Instant::now() + RESCAN;
                    l.rescan().await;
                }
                if Instant::now() >= l.next_refresh {
                    l.next_refresh =
                        Instant::now() + sessions::REFRESH.mul_f64(0.75 + fastrand::f64() / 2.0);
                    l.refresh_sessions();
                }
                l.work(Instant::now()).await;
            }
        }
    }
}

impl Loop {
    fn wanted(&self) -> BTreeSet<SgcRef> {
        self.tunnels.values().filter_map(sgc_of).collect()
    }

    /// The tunnels of `sgc` with their pods' IPs (what the sessions map places).
    fn placed_of(&self, sgc: &SgcRef) -> Vec<(String, IpAddr)> {
        self.tunnels
            .values()
            .filter(|r| sgc_of(r).as_ref() == Some(sgc))
            .map(|r| (r.container_id.clone(), IpAddr::V4(r.pod_ip)))
            .collect()
    }

    /// Re-reads the records when they changed; new SGCs get targets, tunnels that appeared
    /// during an episode are watched, vanished ones forgotten.
    async fn rescan(&mut self) {
        self.scans = self.scans.wrapping_add(1);
        let Some(records) = self
            .scanner
            .scan(self.scans.is_multiple_of(FORCED_RESCAN_EVERY))
        else {
            return;
        };
        let before = self.wanted();
        let now: BTreeMap<String, TunnelRecord> = records
            .into_iter()
            .map(|r| (r.container_id.clone(), r))
            .collect();
        for gone in self.tunnels.keys().filter(|id| !now.contains_key(*id)) {
            self.episodes.forget(gone);
        }
        let t = Instant::now();
        for (id, r) in &now {
            if !self.tunnels.contains_key(id)
                && let Some(sgc) = sgc_of(r)
            {
                self.episodes.adopt(&sgc, id, t);
            }
        }
        let unattributed = now.values().filter(|r| sgc_of(r).is_none()).count();
        if unattributed > 0 && self.first_scan {
            tracing::warn!(
                unattributed,
                "tunnel records without the pod's namespace (written by an older plugin): their failover is left to WireGuard's own timers"
            );
        }
        let fresh: Vec<TunnelRecord> = if self.first_scan {
            now.values().cloned().collect()
        } else {
            Vec::new()
        };
        if self.tunnels.keys().ne(now.keys()) {
            // New tunnels are placed by the next refresh; until then a loss resets them.
            self.refresh_soon(sessions::AFTER_TUNNELS_CHANGED);
        }
        self.tunnels = now;
        self.first_scan = false;
        // A previous manager may have stopped in the middle of an episode: no tunnel keeps
        // a keepalive (and its idle traffic) because of that.
        let offs: Vec<(String, Action)> = fresh
            .iter()
            .map(|r| (r.container_id.clone(), Action::KeepaliveOff))
            .collect();
        self.execute(offs).await;
        if self.wanted() != before {
            self.refresh_targets().await;
        }
    }

    async fn refresh_targets(&mut self) {
        let gateways = self.gateways.borrow_and_update().clone();
        let wanted = self.wanted();
        let targets = self.uids.targets(&self.client, &gateways, &wanted).await;
        let changes = self.health.set_targets(&targets);
        self.prober.sync(&self.health.probes());
        self.handle_changes(changes).await;
    }

    fn publish_health(&self, sgc: &SgcRef) {
        if let Some(healthy) = self.health.healthy(sgc) {
            self.metrics
                .healthy_gateways
                .get_or_create(&crate::metrics::SgcLabels {
                    sgc: sgc.to_string(),
                })
                .set(i64::try_from(healthy.len()).unwrap_or(i64::MAX));
        }
    }

    async fn handle_changes(&mut self, changes: Vec<HealthChange>) {
        for change in changes {
            self.publish_health(&change.sgc);
            let placed = self.placed_of(&change.sgc);
            let tunnels: Vec<String> = placed.iter().map(|(id, _)| id.clone()).collect();
            tracing::info!(
                sgc = %change.sgc,
                lost = ?change.lost(),
                gained = ?change.gained(),
                healthy = change.after.len(),
                tunnels = tunnels.len(),
                "gateway health changed: re-handshaking this node's tunnels of the gateway"
            );
            self.metrics.failover_episodes.inc();
            // Without a sessions port no map is ever taken, so nothing is spared.
            let map = self.sessions.remove(&change.sgc);
            let spared = sessions::spared(map.as_ref(), &change.before, &change.after, &placed);
            self.changed_at.insert(change.sgc.clone(), Instant::now());
            // The tunnels re-handshake within about a second: place them again soon.
            self.refresh_soon(sessions::AFTER_HEALTH_CHANGED);
            if !spared.is_empty() {
                tracing::info!(sgc = %change.sgc, spared = spared.len(), reset = tunnels.len() - spared.len(), "tunnels whose session is on a surviving gateway node keep it");
            }
            let reset = tunnels.into_iter().filter(|id| !spared.contains(id));
            let mut jitter = fastrand::f64;
            let now = Instant::now();
            let healthy = !change.after.is_empty();
            let actions = self
                .episodes
                .start(&change.sgc, healthy, reset, now, &mut jitter);
            for id in &spared {
                // Still watched: a flow the load balancer moves after all gets kicked.
                self.episodes.spare(&change.sgc, id, now);
            }
            self.metrics
                .tunnel_actions
                .get_or_create(&crate::metrics::ActionLabels {
                    action: "spared".into(),
                })
                .inc_by(spared.len() as u64);
            self.execute(actions).await;
        }
        self.work(Instant::now()).await;
    }

    /// Starts a sessions refresh of every SGC in use whose healthy set is known (each on its
    /// own task; the answers come back through `refreshed`).
    fn refresh_sessions(&self) {
        let Some(port) = self.options.settings.sessions_port else {
            return;
        };
        for sgc in self.wanted() {
            let (Some(healthy), Some(uid)) = (self.health.healthy(&sgc), self.health.uid(&sgc))
            else {
                continue;
            };
            if healthy.is_empty() {
                continue;
            }
            let pods: Vec<IpAddr> = self.placed_of(&sgc).into_iter().map(|(_, ip)| ip).collect();
            let task = sessions::refresh(healthy.clone(), port, uid.to_owned(), pods);
            let tx = self.refreshed.clone();
            tokio::spawn(async move {
                let _ = tx.send((sgc, task.await)).await;
            });
        }
    }

    /// Brings the next sessions refresh forward to at most `after` from now.
    fn refresh_soon(&mut self, after: Duration) {
        self.next_refresh = self.next_refresh.min(Instant::now() + after);
    }

    /// Keeps a refresh's map when nothing changed since it started.
    fn refreshed(&mut self, sgc: SgcRef, result: Result<SessionMap, sessions::QueryError>) {
        match result {
            Ok(map) => {
                if self.refresh_failing.remove(&sgc) {
                    tracing::info!(%sgc, "sessions of the gateway nodes located again");
                }
                let current = self.health.healthy(&sgc) == Some(&map.asked)
                    && self.changed_at.get(&sgc).is_none_or(|t| *t < map.taken);
                if current {
                    self.sessions.insert(sgc, map);
                }
            }
            Err(e) => {
                self.metrics.session_query_errors.inc();
                if self.refresh_failing.insert(sgc.clone()) {
                    tracing::warn!(%sgc, "{}; until it answers, a lost gateway node re-handshakes every tunnel of the gateway on this node", crate::error_chain(&e));
                }
                self.sessions.remove(&sgc);
            }
        }
    }

    /// Everything due: ended episodes, resets, counter reads and what they call for.
    async fn work(&mut self, now: Instant) {
        let mut actions = self.episodes.expire(now);
        actions.extend(self.episodes.due_resets(now));
        self.execute(actions).await;
        let polls = self.episodes.due_polls(now);
        if polls.is_empty() {
            return;
        }
        let read = self.read_stats(polls).await;
        let now = Instant::now();
        let mut jitter = fastrand::f64;
        let actions: Vec<(String, Action)> = read
            .into_iter()
            .filter_map(|(id, stats)| {
                tracing::trace!(tunnel = %id, ?stats, "tunnel counters");
                let action = self.episodes.on_stats(&id, stats, now, &mut jitter)?;
                Some((id, action))
            })
            .collect();
        self.execute(actions).await;
    }

    async fn read_stats(&mut self, ids: Vec<String>) -> Vec<(String, Option<TunnelStats>)> {
        let tunnels = self.options.tunnels.clone();
        let jobs: Vec<(String, TunnelRecord)> = ids
            .into_iter()
            .filter_map(|id| self.tunnels.get(&id).map(|r| (id, r.clone())))
            .collect();
        let results: Vec<(String, Result<Option<TunnelStats>, tunnels::TunnelOpError>)> =
            futures::stream::iter(jobs)
                .map(|(id, r)| {
                    let tunnels = tunnels.clone();
                    async move { (id, tunnels.stats(&r).await) }
                })
                .buffer_unordered(READ_CONCURRENCY)
                .collect()
                .await;
        results
            .into_iter()
            .filter_map(|(id, r)| match r {
                Ok(stats) => Some((id, stats)),
                Err(e) => {
                    tracing::warn!("{}", crate::error_chain(&e));
                    self.metrics.tunnel_action_errors.inc();
                    self.episodes.forget(&id);
                    None
                }
            })
            .collect()
    }

    async fn execute(&mut self, actions: Vec<(String, Action)>) {
        if actions.is_empty() {
            return;
        }
        let tunnels = self.options.tunnels.clone();
        let jobs: Vec<(String, TunnelRecord, Action)> = actions
            .into_iter()
            .filter_map(|(id, a)| self.tunnels.get(&id).map(|r| (id, r.clone(), a)))
            .collect();
        let results: Vec<(String, Action, Result<(), tunnels::TunnelOpError>)> =
            futures::stream::iter(jobs)
                .map(|(id, r, a)| {
                    let tunnels = tunnels.clone();
                    async move {
                        let started = Instant::now();
                        let result = tunnels.apply(&r, a).await;
                        tracing::debug!(tunnel = %id, action = ?a, took = ?started.elapsed(), ok = result.is_ok(), "tunnel action");
                        (id, a, result)
                    }
                })
                .buffer_unordered(ACTION_CONCURRENCY)
                .collect()
                .await;
        for (id, action, result) in results {
            let label = match action {
                Action::Reset { kick: false } => "reset",
                Action::Reset { kick: true } => "kick",
                Action::KeepaliveOff => "keepalive_off",
            };
            match result {
                Ok(()) => {
                    self.metrics
                        .tunnel_actions
                        .get_or_create(&crate::metrics::ActionLabels {
                            action: label.into(),
                        })
                        .inc();
                }
                Err(e) => {
                    tracing::warn!("{}", crate::error_chain(&e));
                    self.metrics.tunnel_action_errors.inc();
                    self.episodes.forget(&id);
                }
            }
        }
    }
}
