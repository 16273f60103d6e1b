//! The gateway pool controller: all Azure work, batched per gateway pool (a scale set, known
//! by node pool name or by resource ID, or an AKS VirtualMachines node pool's NICs). Watches keep caches of SGCs, LB and VM configurations
//! and Nodes; every relevant change schedules its pool on a debounced queue
//! (`kube::runtime::scheduler`), and a single worker reconciles one pool at a time, so that
//! several SGCs changing together cost one load-balancer write, one model write and one write
//! per instance. Healthy pools are reconciled again every resync interval to repair drift.

pub mod apply;
pub mod error;
pub mod gateway_pool;
pub mod plan;
pub mod reconcile;
pub mod status;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use egress_api::constants::{AKS_MODE_GATEWAY, AKS_MODE_LABEL, GATEWAY_NODE_LABEL};
use egress_api::{GatewayLBConfiguration, GatewayVMConfiguration, StaticGatewayConfiguration};
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::scheduler::{ScheduleRequest, debounced_scheduler};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::context::Context;
use crate::controller::{self, Pass};
use crate::pool::reconcile::PassOutcome;
use crate::target::{PoolKey, pool_key};

/// Metric label of this controller.
pub const CONTROLLER: &str = "gateway-pool";
/// Poll interval while a pool waits for SGCs' internal objects.
const WAITING_POLL: Duration = Duration::from_millis(200);

/// Cached objects the pool reconciler reads.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // reflector stores are not Debug
pub struct Caches {
    /// StaticGatewayConfigurations.
    pub sgcs: Store<StaticGatewayConfiguration>,
    /// GatewayLBConfigurations.
    pub lbs: Store<GatewayLBConfiguration>,
    /// GatewayVMConfigurations.
    pub vms: Store<GatewayVMConfiguration>,
}

type Requests = UnboundedSender<ScheduleRequest<PoolKey>>;

fn schedule(tx: &Requests, key: PoolKey, after: Duration) {
    let _ = tx.unbounded_send(ScheduleRequest {
        message: key,
        run_at: Instant::now() + after,
    });
}

/// What about an object triggers a pool pass: not our own status writes.
fn fingerprint<K: Resource>(obj: &K) -> (Option<i64>, bool, usize) {
    let m = obj.meta();
    (
        m.generation,
        m.deletion_timestamp.is_some(),
        m.finalizers.as_ref().map_or(0, Vec::len),
    )
}

/// Watches `api` into a cache and schedules `key_of(obj)` when an object appears, disappears
/// or changes its spec, deletion state or finalizers.
fn watch_configs<K>(
    tasks: &mut JoinSet<()>,
    api: Api<K>,
    tx: Requests,
    key_of: fn(&K) -> Option<PoolKey>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tasks.spawn(async move {
        let mut seen: HashMap<String, (Option<i64>, bool, usize)> = HashMap::new();
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let (obj, deleted) = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => (o, true),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed, retrying");
                    continue;
                }
            };
            let uid = obj.uid().unwrap_or_default();
            let fp = fingerprint(&obj);
            let changed = if deleted {
                seen.remove(&uid);
                true
            } else {
                seen.insert(uid, fp) != Some(fp)
            };
            if let (true, Some(key)) = (changed, key_of(&obj)) {
                schedule(&tx, key, Duration::ZERO);
            }
        }
    });
    reader
}

fn is_gateway_node(node: &Node) -> bool {
    let labels = node.labels();
    labels.get(AKS_MODE_LABEL).map(String::as_str) == Some(AKS_MODE_GATEWAY)
        || labels.get(GATEWAY_NODE_LABEL).map(String::as_str) == Some("true")
}

/// A gateway node added or removed reconciles every pool (as the original), so the new
/// instance gets its ipConfigs without waiting for the resync.
fn watch_nodes(
    tasks: &mut JoinSet<()>,
    api: Api<Node>,
    tx: Requests,
    lbs: Store<GatewayLBConfiguration>,
) {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    tasks.spawn(async move {
        let mut known: HashSet<String> = HashSet::new();
        let mut initialised = false;
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            let changed = match ev {
                Ok(watcher::Event::InitApply(n)) => {
                    if is_gateway_node(&n) {
                        known.insert(n.name_any());
                    }
                    false
                }
                Ok(watcher::Event::InitDone) => {
                    initialised = true;
                    false
                }
                Ok(watcher::Event::Apply(n)) => is_gateway_node(&n) && known.insert(n.name_any()),
                Ok(watcher::Event::Delete(n)) => known.remove(&n.name_any()),
                Ok(watcher::Event::Init) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "node watch failed, retrying");
                    false
                }
            };
            if changed && initialised {
                let keys: HashSet<PoolKey> = lbs
                    .state()
                    .iter()
                    .filter_map(|lb| pool_key(&lb.spec.target))
                    .collect();
                for key in keys {
                    schedule(&tx, key, Duration::ZERO);
                }
            }
        }
    });
}

/// Runs the pool controller until `shutdown` completes (finishing the pass in progress).
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let (tx, rx) = unbounded::<ScheduleRequest<PoolKey>>();
    let mut tasks = JoinSet::new();
    let client = ctx.client.clone();
    let lbs = watch_configs(
        &mut tasks,
        Api::all(client.clone()),
        tx.clone(),
        |o: &GatewayLBConfiguration| pool_key(&o.spec.target),
    );
    let vms = watch_configs(
        &mut tasks,
        Api::all(client.clone()),
        tx.clone(),
        |o: &GatewayVMConfiguration| pool_key(&o.spec.target),
    );
    // SGCs only feed the cache: their changes reach the pool through their LB configurations.
    let sgcs = watch_configs(
        &mut tasks,
        Api::all(client.clone()),
        tx.clone(),
        |_: &StaticGatewayConfiguration| None,
    );
    watch_nodes(&mut tasks, Api::all(client), tx.clone(), lbs.clone());
    let caches = Caches { sgcs, lbs, vms };

    futures::pin_mut!(shutdown);
    let ready = async {
        let _ = caches.sgcs.wait_until_ready().await;
        let _ = caches.lbs.wait_until_ready().await;
        let _ = caches.vms.wait_until_ready().await;
    };
    tokio::select! {
        () = ready => {}
        () = &mut shutdown => { tasks.shutdown().await; return; }
    }
    tracing::info!("gateway pool controller started");
    let scheduler = debounced_scheduler(rx, ctx.config.debounce);
    work(&ctx, &caches, &tx, scheduler, shutdown).await;
    tasks.shutdown().await;
}

async fn work(
    ctx: &Context,
    caches: &Caches,
    tx: &Requests,
    scheduler: impl Stream<Item = PoolKey>,
    shutdown: impl Future<Output = ()>,
) {
    let mut waiting_since: HashMap<PoolKey, Instant> = HashMap::new();
    futures::pin_mut!(scheduler);
    futures::pin_mut!(shutdown);
    loop {
        let key = tokio::select! {
            k = scheduler.next() => match k { Some(k) => k, None => return },
            () = &mut shutdown => return,
        };
        let impatient = waiting_since
            .get(&key)
            .is_some_and(|t| t.elapsed() >= ctx.config.chain_wait);
        let pass = Pass::start(ctx, CONTROLLER, &key);
        let span = tracing::info_span!("reconcile", controller = CONTROLLER, pool = %key);
        let result = reconcile::reconcile(ctx, caches, &key, impatient)
            .instrument(span)
            .await;
        match result {
            // Not a finished pass: neither counted nor a reason to forget earlier failures.
            Ok(PassOutcome::Waiting) => {
                waiting_since
                    .entry(key.clone())
                    .or_insert_with(Instant::now);
                schedule(tx, key, WAITING_POLL);
            }
            Ok(PassOutcome::Done) => {
                waiting_since.remove(&key);
                pass.succeeded();
                schedule(tx, key, ctx.config.resync_interval);
            }
            Err(e) => {
                pass.failed(&key, &e);
                let delay = controller::retry_delay(ctx, CONTROLLER, &key, &e)
                    .unwrap_or(ctx.config.resync_interval);
                tracing::debug!(pool = %key, ?delay, "gateway pool pass retried");
                schedule(tx, key, delay);
            }
        }
    }
}
