//! Kubernetes Events about rejected or failed objects (an invalid PodEndpoint, a gateway whose
//! key is wrong or whose port is busy). The programmer queues reports; one task publishes
//! them, so a slow API server never holds up programming.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

/// One Event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The object concerned.
    pub object: ObjectReference,
    /// Warning (true) or Normal.
    pub warning: bool,
    /// PascalCase reason.
    pub reason: String,
    /// Human-readable message.
    pub note: String,
}

/// Queue of reports (unbounded: reports are deduplicated by the programmer, so their number
/// is bounded by the number of objects in error).
pub type ReportSender = mpsc::UnboundedSender<Report>;

/// The reference of an object for an Event.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    obj.object_ref(&())
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

/// Publishes queued reports until the queue closes. Publishing failures are logged only.
pub async fn publish_reports(
    client: kube::Client,
    node_name: String,
    mut rx: mpsc::UnboundedReceiver<Report>,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: egress_api::constants::FIELD_MANAGER_GATEWAY_DAEMON.into(),
            instance: Some(node_name),
        },
    );
    while let Some(report) = rx.recv().await {
        let event = Event {
            type_: if report.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: report.reason.clone(),
            note: Some(truncate(report.note, 1000)),
            action: "Programming".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &report.object).await {
            tracing::warn!(error = %e, reason = %report.reason, "failed to publish an event");
        }
    }
}
