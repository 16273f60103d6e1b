//! The manager's cache of StaticGatewayConfigurations (all namespaces: a pod's gateway may be
//! chosen by any SGC of its namespace's `podSelector`s) and what is derived from it: the
//! [`Selectors`] the request handler and the attachment of running pods resolve pods with
//! (`egress_api::selection`, the one rule), and the file of namespaces with selectors the
//! plugin reads at ADD ([`SelectorNamespaces`]) so that plain pods elsewhere never wait for
//! the manager. It never writes to the API.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use egress_api::StaticGatewayConfiguration;
use egress_api::selection::Selectors;
use egress_cni_proto::SelectorNamespaces;
use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio::sync::Notify;

use tokio_util::sync::CancellationToken;

use crate::state::NodeState;

/// The SGC cache: a reflector store, whether its first list completed, and a wake-up for
/// every change.
#[derive(Clone)]
pub struct GatewayCache {
    store: Store<StaticGatewayConfiguration>,
    // `None` until the first list completed; then the selectors of the current store,
    // re-derived at every change (so a request never parses selectors).
    selectors: Arc<RwLock<Option<Arc<Selectors>>>>,
    changes: Arc<Notify>,
}

impl std::fmt::Debug for GatewayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayCache")
            .field("synced", &self.synced())
            .finish_non_exhaustive()
    }
}

impl GatewayCache {
    /// A cache that never fills (no watch): every reader falls back to asking the API.
    pub fn unwatched() -> Self {
        let (store, _writer) = reflector::store();
        Self {
            store,
            selectors: Arc::default(),
            changes: Arc::default(),
        }
    }

    /// Whether the first list completed (before it, the cache must not be trusted).
    pub fn synced(&self) -> bool {
        self.read().is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Arc<Selectors>>> {
        self.selectors.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the next change (one stored permit).
    pub async fn changed(&self) {
        self.changes.notified().await;
    }

    /// Every cached SGC.
    pub fn state(&self) -> Vec<Arc<StaticGatewayConfiguration>> {
        self.store.state()
    }

    /// The usable selectors of every namespace, if the cache is synced.
    pub fn selectors(&self) -> Option<Arc<Selectors>> {
        self.read().clone()
    }

    fn refresh(&self) -> Arc<Selectors> {
        let now = Arc::new(Selectors::of(self.store.state().iter().map(AsRef::as_ref)));
        *self.selectors.write().unwrap_or_else(|e| e.into_inner()) = Some(now.clone());
        now
    }
}

/// Starts the SGC watch; the returned cache fills as it runs. `selector_file`: where the
/// namespaces with selectors are published for the plugin once the first list completed. A
/// file from an earlier run stays until then: stale by the selector changes made while no
/// manager ran (their pods are attached as running pods once it is replaced), where removing
/// it would make every plain pod of the node wait for this manager (and fail while it
/// cannot reach the API).
pub fn start(
    client: kube::Client,
    selector_file: PathBuf,
    state: NodeState,
    cancel: CancellationToken,
) -> (GatewayCache, impl std::future::Future<Output = ()>) {
    let (store, writer) = reflector::store();
    let cache = GatewayCache {
        store,
        selectors: Arc::default(),
        changes: Arc::new(Notify::new()),
    };
    let task = run(client, writer, cache.clone(), selector_file, state, cancel);
    (cache, task)
}

async fn run(
    client: kube::Client,
    writer: reflector::store::Writer<StaticGatewayConfiguration>,
    cache: GatewayCache,
    selector_file: PathBuf,
    state: NodeState,
    cancel: CancellationToken,
) {
    let api: Api<StaticGatewayConfiguration> = Api::all(client);
    let mut stream =
        reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
            .default_backoff()
            .boxed();
    let mut published: Option<SelectorNamespaces> = None;
    let mut synced = false;
    while let Some(next) = crate::pod_watch::next_or_cancelled(&mut stream, &cancel).await {
        match next {
            Err(e) => {
                tracing::warn!(error = %e, "SGC watch failed; retrying with backoff");
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                synced = true;
                state.set_gateways_synced(true);
            }
            // A (re)list in progress: the store changes only at InitDone.
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Ok(_) => {}
        }
        if synced {
            let selectors = cache.refresh();
            publish(&selector_file, &selectors, &mut published);
        }
        cache.changes.notify_one();
    }
}

/// Writes the namespaces with selectors when they changed since the last write.
fn publish(
    file: &std::path::Path,
    selectors: &Selectors,
    published: &mut Option<SelectorNamespaces>,
) {
    let now = SelectorNamespaces {
        namespaces: selectors.namespaces().map(str::to_owned).collect(),
    };
    if published.as_ref() == Some(&now) {
        return;
    }
    match now.save(file) {
        Ok(()) => {
            tracing::info!(namespaces = ?now.namespaces, "published the namespaces with pod selectors");
            *published = Some(now);
        }
        // Without the file the plugin asks the manager for every plain pod (never wrong,
        // only slower); a stale one would be wrong, so it goes. The next change retries.
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "failed to publish the namespaces with pod selectors");
            let _ = SelectorNamespaces::remove(file);
            *published = None;
        }
    }
}
