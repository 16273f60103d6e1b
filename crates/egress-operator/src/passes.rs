//! The loop of the controllers that work in whole passes over reflector caches rather than
//! per object (`pod_endpoint_status`, `in_use`): a pass once the caches are synced, then after
//! changes (debounced), at least every tick, and again soon after a pass that failed. No
//! reconcile logic here.

use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde::de::DeserializeOwned;

/// A change of one watched kind (the cache is updated before it is yielded).
pub type Changes = BoxStream<'static, Result<(), watcher::Error>>;

/// Watches `api` into the cache behind `writer`; yields one item per change.
pub fn watch_into<K>(writer: Writer<K>, api: kube::Api<K>) -> Changes
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .map_ok(|_| ())
        .boxed()
}

/// How often passes run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Wait for more changes this long before a pass.
    pub debounce: Duration,
    /// A pass at least this often.
    pub tick: Duration,
    /// After a pass that returned false, the next one this soon.
    pub retry: Duration,
}

/// Runs `pass` as [`Timing`] says until `shutdown` completes or `changes` ends; `ready`
/// completes once the caches are synced (no pass before). `name` is for logs.
pub async fn run<P, Fut>(
    name: &'static str,
    changes: impl Stream<Item = Result<(), watcher::Error>>,
    ready: impl Future<Output = ()>,
    timing: Timing,
    shutdown: impl Future<Output = ()>,
    mut pass: P,
) where
    P: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    futures::pin_mut!(changes, shutdown, ready);
    let mut synced = false;
    let mut due: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(timing.tick);
    loop {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            () = &mut shutdown => return,
            () = &mut ready, if !synced => { synced = true; due = Some(tokio::time::Instant::now()); }
            change = changes.next() => match change {
                Some(Ok(())) => { due.get_or_insert_with(|| tokio::time::Instant::now() + timing.debounce); }
                Some(Err(e)) => tracing::debug!(controller = name, error = %e, "watch error (retried)"),
                None => return,
            },
            _ = tick.tick() => { due.get_or_insert_with(tokio::time::Instant::now); }
            () = tokio::time::sleep_until(due.unwrap_or(far)), if due.is_some() && synced => {
                due = None;
                if !pass().await {
                    due = Some(tokio::time::Instant::now() + timing.retry);
                }
            }
        }
    }
}
