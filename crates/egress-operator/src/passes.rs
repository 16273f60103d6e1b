//! The loop of the controllers that work in whole passes over reflector caches rather than
//! per object (`pod_endpoint_status`, `in_use`): a pass once the caches are synced, then after
//! changes (debounced until the changes pause, at most three debounce periods), at least every tick, and again soon after a pass that failed. No
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

/// Applies a pass's `actions` (at most `concurrency` at once), logs every failure, records the
/// pass (from `started`) in the metrics of `controller`; true when every action succeeded.
pub async fn apply_all<A, F, Fut>(
    ctx: &crate::context::Context,
    controller: &'static str,
    started: std::time::Instant,
    actions: Vec<A>,
    concurrency: usize,
    apply: F,
) -> bool
where
    F: Fn(A) -> Fut,
    Fut: Future<Output = Result<(), crate::error::KubeError>>,
{
    use crate::controller::ReconcileError;
    let results: Vec<Result<(), crate::error::KubeError>> = futures::stream::iter(actions)
        .map(apply)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let failed: Vec<&crate::error::KubeError> =
        results.iter().filter_map(|r| r.as_ref().err()).collect();
    for e in &failed {
        tracing::warn!(controller, error = %egress_runtime::error_chain(*e), "pass failed");
    }
    let category = failed.first().map(|e| e.category());
    ctx.metrics.record(controller, started.elapsed(), category);
    failed.is_empty()
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
    // When the burst that `due` waits for began.
    let mut burst: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(timing.tick);
    loop {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            () = &mut shutdown => return,
            () = &mut ready, if !synced => { synced = true; due = Some(tokio::time::Instant::now()); }
            change = changes.next() => match change {
                Some(Ok(())) => {
                    let now = tokio::time::Instant::now();
                    let start = *burst.get_or_insert(now);
                    due = Some(next_due(due, start, now, timing.debounce));
                }
                Some(Err(e)) => tracing::debug!(controller = name, error = %e, "watch error (retried)"),
                None => return,
            },
            _ = tick.tick() => { due.get_or_insert_with(tokio::time::Instant::now); }
            () = tokio::time::sleep_until(due.unwrap_or(far)), if due.is_some() && synced => {
                due = None;
                burst = None;
                if !pass().await {
                    due = Some(tokio::time::Instant::now() + timing.retry);
                }
            }
        }
    }
}

/// Longest a burst of changes can hold a pass back, in debounce periods.
const BURST_CAP: u32 = 3;

/// When the pass after a change at `now` is due: `debounce` after the last change of a burst
/// that began at `start` (so changes written one after the other, say several SGCs deleted
/// together, are seen by one pass and released together), but never later than
/// [`BURST_CAP`] debounce periods after the burst began; a pass already due (a tick) stays
/// due.
fn next_due<I>(due: Option<I>, start: I, now: I, debounce: Duration) -> I
where
    I: Copy + Ord + std::ops::Add<Duration, Output = I>,
{
    let trailing = (now + debounce).min(start + debounce * BURST_CAP);
    match due {
        Some(d) if d <= now => d,
        _ => trailing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_burst_of_changes_waits_for_quiet_but_not_for_ever() {
        let d = Duration::from_millis(300);
        let t0 = Instant::now();
        let first = next_due(None, t0, t0, d);
        assert_eq!(first, t0 + d);
        // A change 200 ms later pushes the pass to 300 ms after it.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(next_due(Some(first), t0, t1, d), t1 + d);
        // A steady stream (a change every 250 ms) is cut off three periods after it began.
        let mut due = None;
        for ms in [0, 250, 500, 750] {
            due = Some(next_due(due, t0, t0 + Duration::from_millis(ms), d));
        }
        assert_eq!(due, Some(t0 + d * BURST_CAP));
        // A pass already due (a tick, a retry) is not postponed.
        assert_eq!(next_due(Some(t0), t0, t1, d), t0);
    }
}
