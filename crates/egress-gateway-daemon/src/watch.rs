//! The five watches (StaticGatewayConfigurations, GatewayVMConfigurations, PodEndpoints and
//! Pods that have not finished cluster-wide; Secrets in the key namespace only) turned into
//! [`Change`]s on one channel. A (re)list arrives as one `Relisted` change, so deletions missed
//! while disconnected are noticed; single events arrive as `Apply`/`Delete`. Pods are reduced
//! to [`PodFacts`] as they arrive, so only those are kept.

use std::fmt::Debug;

use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::inventory::{Change, Delta};
use crate::pods::{POD_WATCH_FIELDS, PodFacts};

/// How one kind is watched: the watch's config, what is kept of each object, the change.
struct Watch<K, T> {
    api: Api<K>,
    config: watcher::Config,
    keep: fn(K) -> T,
    wrap: fn(Delta<T>) -> Change,
}

impl<K> Watch<K, K> {
    fn whole(api: Api<K>, wrap: fn(Delta<K>) -> Change) -> Self {
        Self {
            api,
            config: watcher::Config::default(),
            keep: |k| k,
            wrap,
        }
    }
}

async fn watch_kind<K, T>(w: Watch<K, T>, tx: mpsc::Sender<Change>)
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let Watch {
        api,
        config,
        keep,
        wrap,
    } = w;
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut buffer: Vec<T> = Vec::new();
    while let Some(event) = stream.next().await {
        let delta = match event {
            Ok(Event::Init) => {
                buffer.clear();
                continue;
            }
            Ok(Event::InitApply(obj)) => {
                buffer.push(keep(obj));
                continue;
            }
            Ok(Event::InitDone) => Delta::Relisted(std::mem::take(&mut buffer)),
            Ok(Event::Apply(obj)) => Delta::Apply(keep(obj)),
            Ok(Event::Delete(obj)) => Delta::Delete(keep(obj)),
            Err(e) => {
                tracing::warn!(%kind, error = %e, "watch failed; retrying");
                continue;
            }
        };
        if tx.send(wrap(delta)).await.is_err() {
            return;
        }
    }
}

/// Starts the watches; they stop when the receiver is dropped or the tasks are aborted.
pub fn spawn_watches(
    client: &kube::Client,
    secret_namespace: &str,
    tx: mpsc::Sender<Change>,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(watch_kind(
            Watch::whole(
                Api::<StaticGatewayConfiguration>::all(client.clone()),
                |d| Change::Sgc(Box::new(d)),
            ),
            tx.clone(),
        )),
        tokio::spawn(watch_kind(
            Watch::whole(
                Api::<GatewayVMConfiguration>::all(client.clone()),
                Change::VmConfig,
            ),
            tx.clone(),
        )),
        tokio::spawn(watch_kind(
            Watch::whole(
                Api::<Secret>::namespaced(client.clone(), secret_namespace),
                Change::Secret,
            ),
            tx.clone(),
        )),
        tokio::spawn(watch_kind(
            Watch::whole(Api::<PodEndpoint>::all(client.clone()), Change::PodEndpoint),
            tx.clone(),
        )),
        tokio::spawn(watch_kind(
            Watch {
                api: Api::<Pod>::all(client.clone()),
                config: watcher::Config::default().fields(POD_WATCH_FIELDS),
                keep: |p: Pod| PodFacts::of(&p),
                wrap: Change::Pod,
            },
            tx,
        )),
    ]
}
