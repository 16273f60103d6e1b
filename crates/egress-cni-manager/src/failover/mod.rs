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
//! `prober` (observe: where and how the gateways answer), `health` (pure: the healthy set and
//! its changes), `episode` (pure: what to do to each tunnel, from its counters), `tunnels`
//! (apply: read counters, re-create a peer). This module runs them in one loop.

pub mod episode;
pub mod health;
pub mod prober;
pub mod records;
pub mod targets;
pub mod tunnels;

use std::collections::{BTreeMap, BTreeSet};
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
use targets::{GatewayMap, UidCache};
use tunnels::{DataplaneTunnels, PodTunnels};

/// Tunnel operations in flight at once (each is one netlink or UAPI round trip).
const CONCURRENCY: usize = 16;
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
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            probe: ProbeSettings {
                port: egress_api::constants::HEALTH_PROBE_PORT,
                interval: Duration::from_millis(500),
                timeout: Duration::from_millis(500),
            },
            timing: Timing::default(),
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
}

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
    };
    tracing::info!(records = %l.scanner.dir().display(), "gateway failover watching");
    let mut next_scan = Instant::now();
    loop {
        let wake = l
            .episodes
            .next_due()
            .map_or(next_scan, |t| t.min(next_scan));
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(r) = results.recv() => {
                let change = l.health.record(&r.sgc, &r.uid, r.node, r.up);
                l.publish_health(&r.sgc);
                l.handle_changes(change.into_iter().collect()).await;
            }
            Ok(()) = l.gateways.changed() => l.refresh_targets().await,
            () = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= next_scan {
                    next_scan = Instant::now() + RESCAN;
                    l.rescan().await;
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

    fn tunnels_of(&self, sgc: &SgcRef) -> Vec<String> {
        self.tunnels
            .values()
            .filter(|r| sgc_of(r).as_ref() == Some(sgc))
            .map(|r| r.container_id.clone())
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
            let tunnels = self.tunnels_of(&change.sgc);
            tracing::info!(
                sgc = %change.sgc,
                lost = ?change.lost(),
                gained = ?change.gained(),
                healthy = change.after.len(),
                tunnels = tunnels.len(),
                "gateway health changed: re-handshaking this node's tunnels of the gateway"
            );
            self.metrics.failover_episodes.inc();
            let mut jitter = fastrand::f64;
            let actions = self.episodes.start(
                &change.sgc,
                !change.after.is_empty(),
                tunnels,
                Instant::now(),
                &mut jitter,
            );
            self.execute(actions).await;
        }
        self.work(Instant::now()).await;
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
                .buffer_unordered(CONCURRENCY)
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
                    async move { (id, a, tunnels.apply(&r, a).await) }
                })
                .buffer_unordered(CONCURRENCY)
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
