//! Handles every controller shares: Kubernetes client, Azure API, Event recorder, metrics,
//! settings and the per-object retry counters. No global state lives anywhere else.

use std::sync::Arc;

use egress_azure::AzureApi;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::config::OperatorConfig;
use crate::controller::RetryCounters;
use crate::metrics::Metrics;

/// Shared handles of all controllers.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Azure Resource Manager.
    pub azure: Arc<dyn AzureApi>,
    /// Metrics.
    pub metrics: Metrics,
    /// Settings.
    pub config: Arc<OperatorConfig>,
    /// Failures in a row per object, for the backoff (see `controller`).
    pub(crate) retries: RetryCounters,
    recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Builds the context.
    pub fn new(
        client: kube::Client,
        azure: Arc<dyn AzureApi>,
        metrics: Metrics,
        config: OperatorConfig,
    ) -> Self {
        let reporter = Reporter {
            controller: config.reporter.clone(),
            instance: config.instance.clone(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            azure,
            metrics,
            config: Arc::new(config),
            retries: RetryCounters::default(),
        }
    }

    /// Publishes an Event about `object`; a failure to publish is logged, never fatal.
    pub async fn event(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(truncate(note, 1000)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, object).await {
            tracing::warn!(error = %e, reason, "failed to publish event");
        }
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
