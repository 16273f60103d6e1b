//! What every controller of the operator does around its reconcile, so that it lives once:
//! time and count each reconcile (metrics by controller, result and error category), log a
//! failure with its whole error chain, keep the per-object retry counters (keyed
//! `<controller>/<id>`, forgotten after a success) and turn a failure into the next attempt
//! (wait for a change, Retry-After, or backoff, by [`Category`]). No reconcile logic here.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egress_runtime::error_chain;
use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::{Backoff, Category};

/// The error of a reconcile, as the scaffolding needs to see it.
pub trait ReconcileError: std::error::Error {
    /// What kind of failure it is (metric label, Event reason, retry policy).
    fn category(&self) -> Category;
    /// The Retry-After a throttled call asked for.
    fn retry_after(&self) -> Option<Duration>;
}

/// One reconcile of one object (or pool), from its start to its result.
#[derive(Debug)]
#[must_use = "a pass records nothing until it succeeded or failed"]
pub struct Pass<'a> {
    ctx: &'a Context,
    controller: &'static str,
    id: String,
    started: Instant,
}

impl<'a> Pass<'a> {
    /// Starts the clock for the object `id` (UID, or pool key) of `controller`.
    pub fn start(ctx: &'a Context, controller: &'static str, id: impl Display) -> Self {
        Self {
            ctx,
            controller,
            id: id.to_string(),
            started: Instant::now(),
        }
    }

    /// Counts a success; the object's earlier failures are forgotten (backoff starts over).
    pub fn succeeded(self) {
        let took = self.started.elapsed();
        self.ctx.metrics.record(self.controller, took, None);
        self.ctx
            .retries
            .reset(&retry_key(self.controller, &self.id));
    }

    /// Counts a failure of `object` (its name for the log) and logs it; returns its category.
    pub fn failed(self, object: &dyn Display, e: &dyn ReconcileError) -> Category {
        let category = e.category();
        let took = self.started.elapsed();
        self.ctx
            .metrics
            .record(self.controller, took, Some(category));
        tracing::warn!(
            controller = self.controller,
            object = %object,
            category = category.as_str(),
            error = %error_chain(e),
            "reconcile failed"
        );
        category
    }
}

fn retry_key(controller: &str, id: &str) -> String {
    format!("{controller}/{id}")
}

/// Failures in a row per object (`<controller>/<id>`), shared by all controllers.
#[derive(Debug, Clone, Default)]
pub struct RetryCounters(Arc<Mutex<HashMap<String, u32>>>);

impl RetryCounters {
    /// The delay before the next attempt at `key` after `e`, counting this failure.
    fn next_delay(&self, key: &str, backoff: &Backoff, e: &dyn ReconcileError) -> Option<Duration> {
        let attempt = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(key.to_string()).or_insert(0);
            let a = *n;
            *n = n.saturating_add(1);
            a
        };
        backoff.delay(e.category(), attempt, e.retry_after())
    }

    /// Forgets the failures of `key` after a success.
    fn reset(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// How long to wait before the next attempt at the object `id` of `controller` after `e`
/// (counting the attempt); `None` waits for a change.
pub fn retry_delay(
    ctx: &Context,
    controller: &str,
    id: impl Display,
    e: &dyn ReconcileError,
) -> Option<Duration> {
    let key = retry_key(controller, &id.to_string());
    ctx.retries.next_delay(&key, &ctx.config.backoff, e)
}

/// `namespace/name` of a Kubernetes object, for logs.
pub fn object_name<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Runs a kube-runtime `controller` named `name` until its graceful shutdown: each
/// `reconcile` is a [`Pass`] keyed by the object's UID, and each failure is retried after
/// [`retry_delay`] (or waits for a change).
pub async fn run_objects<K, E, Fut>(
    controller: Controller<K>,
    name: &'static str,
    ctx: Context,
    reconcile: fn(Arc<K>, Arc<Context>) -> Fut,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    E: ReconcileError + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let timed = move |obj: Arc<K>, ctx: Arc<Context>| async move {
        let pass = Pass::start(&ctx, name, obj.uid().unwrap_or_default());
        let result = reconcile(Arc::clone(&obj), Arc::clone(&ctx)).await;
        match &result {
            Ok(_) => pass.succeeded(),
            Err(e) => {
                pass.failed(&object_name(obj.as_ref()), e);
            }
        }
        result
    };
    let policy = move |obj: Arc<K>, e: &E, ctx: Arc<Context>| match retry_delay(
        &ctx,
        name,
        obj.uid().unwrap_or_default(),
        e,
    ) {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    };
    controller
        .run(timed, policy, Arc::new(ctx))
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed")]
    struct Failed(Category, Option<Duration>);

    impl ReconcileError for Failed {
        fn category(&self) -> Category {
            self.0
        }
        fn retry_after(&self) -> Option<Duration> {
            self.1
        }
    }

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(64),
            throttled_default: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_grows_per_object_and_starts_over_after_a_success() {
        let r = RetryCounters::default();
        let (b, e) = (backoff(), Failed(Category::Transient, None));
        let secs = |d: Option<Duration>| d.unwrap().as_secs_f64();
        // Equal jitter: retry n waits between 2^n / 2 and 2^n seconds.
        let first = secs(r.next_delay("pool/a", &b, &e));
        assert!((0.5..=1.0).contains(&first), "{first}");
        r.next_delay("pool/a", &b, &e);
        let third = secs(r.next_delay("pool/a", &b, &e));
        assert!((2.0..=4.0).contains(&third), "{third}");
        // Another object (or the same UID under another controller) has its own count.
        let other = secs(r.next_delay("sgc/a", &b, &e));
        assert!((0.5..=1.0).contains(&other), "{other}");
        r.reset("pool/a");
        let again = secs(r.next_delay("pool/a", &b, &e));
        assert!((0.5..=1.0).contains(&again), "{again}");
    }

    #[test]
    fn invalid_specs_wait_for_a_change_and_throttling_waits_as_asked() {
        let r = RetryCounters::default();
        let b = backoff();
        let invalid = Failed(Category::InvalidSpec, None);
        assert_eq!(r.next_delay("k", &b, &invalid), None);
        let throttled = Failed(Category::Throttled, Some(Duration::from_secs(7)));
        assert_eq!(
            r.next_delay("k", &b, &throttled),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_key("gateway-pool", "vmss/rg/gw"),
            "gateway-pool/vmss/rg/gw"
        );
    }
}
