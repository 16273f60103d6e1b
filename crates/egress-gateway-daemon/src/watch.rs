//! The four watches (StaticGatewayConfigurations, GatewayVMConfigurations, PodEndpoints
//! cluster-wide; Secrets in the key namespace only) turned into [`Change`]s on one channel.
//! A (re)list arrives as one `Relisted` change, so deletions missed while disconnected are
//! noticed; single events arrive as `Apply`/`Delete`.

use std::fmt::Debug;

use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::inventory::{Change, Delta};

async fn watch_kind<K>(api: Api<K>, tx: mpsc::Sender<Change>, wrap: fn(Delta<K>) -> Change)
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut buffer: Vec<K> = Vec::new();
    while let Some(event) = stream.next().await {
        let delta = match event {
            Ok(Event::Init) => {
                buffer.clear();
                continue;
            }
            Ok(Event::InitApply(obj)) => {
                buffer.push(obj);
                continue;
            }
            Ok(Event::InitDone) => Delta::Relisted(std::mem::take(&mut buffer)),
            Ok(Event::Apply(obj)) => Delta::Apply(obj),
            Ok(Event::Delete(obj)) => Delta::Delete(obj),
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
            Api::<StaticGatewayConfiguration>::all(client.clone()),
            tx.clone(),
            |d| Change::Sgc(Box::new(d)),
        )),
        tokio::spawn(watch_kind(
            Api::<GatewayVMConfiguration>::all(client.clone()),
            tx.clone(),
            Change::VmConfig,
        )),
        tokio::spawn(watch_kind(
            Api::<Secret>::namespaced(client.clone(), secret_namespace),
            tx.clone(),
            Change::Secret,
        )),
        tokio::spawn(watch_kind(
            Api::<PodEndpoint>::all(client.clone()),
            tx,
            Change::PodEndpoint,
        )),
    ]
}
