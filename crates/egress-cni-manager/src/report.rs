//! The plugin's report after an annotated pod's ADD (`op: report`): each phase's duration goes
//! into `egress_cni_manager_add_phase_duration_seconds{phase}` (so the first-packet latency of
//! production pods is visible), a failure into `add_failures_total{phase}`, and what the
//! plugin did in the pod into the PodEndpoint's `status.tunnel` (one status write per ADD,
//! off the ADD path: the reply does not wait for it). Reports about pods that are not this
//! node's (not in the node-local cache) are counted but not written anywhere.

use egress_api::PodEndpoint;
use egress_api::constants::{API_VERSION, FIELD_MANAGER_CNI_MANAGER};
use egress_cni_proto::{AddPhase, DefaultRoute, ReportReply, ReportRequest};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::metrics::{Metrics, PhaseLabels};
use crate::state::PodCache;

fn millis(report: &ReportRequest, phase: AddPhase) -> Option<i64> {
    report
        .phases
        .iter()
        .find(|p| p.phase == phase)
        .map(|p| (p.seconds * 1000.0).round() as i64)
}

/// The `status.tunnel` the report describes.
pub fn tunnel_status(report: &ReportRequest, now: Time) -> egress_api::PodTunnel {
    let routes = report.routes.as_ref();
    egress_api::PodTunnel {
        container_id: Some(report.container_id.clone()),
        state: Some(
            if report.failed_phase.is_some() {
                "Failed"
            } else {
                "Ready"
            }
            .into(),
        ),
        failed_phase: report.failed_phase.map(|p| p.name().to_string()),
        register_ms: millis(report, AddPhase::Register),
        tunnel_ms: millis(report, AddPhase::Tunnel),
        handshake_ms: millis(report, AddPhase::Handshake),
        routes_ms: millis(report, AddPhase::Routes),
        default_route: routes.map(|r| {
            match r.default_route {
                DefaultRoute::StaticEgressGateway => "staticEgressGateway",
                DefaultRoute::AzureNetworking => "azureNetworking",
            }
            .to_string()
        }),
        exclude_cidrs: routes
            .map(|r| r.exclude_cidrs.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        node_exclude_cidrs: routes
            .map(|r| {
                r.node_exclude_cidrs
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        report_time: Some(now),
    }
}

/// Records one report: metrics now, the PodEndpoint status in the background.
pub fn record(
    client: &kube::Client,
    cache: &PodCache,
    metrics: &Metrics,
    report: ReportRequest,
) -> ReportReply {
    for p in &report.phases {
        if p.seconds.is_finite() && p.seconds >= 0.0 {
            metrics
                .add_phase_seconds
                .get_or_create(&PhaseLabels {
                    phase: p.phase.name().into(),
                })
                .observe(p.seconds);
        }
    }
    if let Some(failed) = report.failed_phase {
        metrics
            .add_failures
            .get_or_create(&PhaseLabels {
                phase: failed.name().into(),
            })
            .inc();
    }
    let key = (report.pod.namespace.clone(), report.pod.name.clone());
    if cache.get(&key).is_none() {
        return ReportReply { recorded: false };
    }
    let api: Api<PodEndpoint> = Api::namespaced(client.clone(), &report.pod.namespace);
    let metrics = metrics.clone();
    let body = json!({
        "apiVersion": API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": report.pod.name},
        "status": {"tunnel": tunnel_status(&report, Time(Timestamp::now()))},
    });
    let pod = report.pod.clone();
    tokio::spawn(async move {
        let params = PatchParams::apply(FIELD_MANAGER_CNI_MANAGER).force();
        if let Err(e) = api
            .patch_status(&pod.name, &params, &Patch::Apply(&body))
            .await
        {
            metrics.status_write_errors.inc();
            tracing::debug!(%pod, error = %e, "failed to write the PodEndpoint's status.tunnel");
        }
    });
    ReportReply { recorded: true }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use egress_cni_proto::{PhaseTiming, PodRef, RoutesReport};

    #[test]
    fn a_report_becomes_the_tunnel_status() {
        let report = ReportRequest {
            pod: PodRef {
                namespace: "ns".into(),
                name: "web".into(),
                uid: None,
            },
            container_id: "c1".into(),
            failed_phase: None,
            phases: vec![
                PhaseTiming {
                    phase: AddPhase::Register,
                    seconds: 0.0071,
                },
                PhaseTiming {
                    phase: AddPhase::Handshake,
                    seconds: 0.155,
                },
            ],
            routes: Some(RoutesReport {
                default_route: DefaultRoute::StaticEgressGateway,
                exclude_cidrs: vec!["10.0.0.0/8".parse().unwrap()],
                node_exclude_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
                ipv6: false,
            }),
        };
        let now = Time(Timestamp::from_second(1000).unwrap());
        let t = tunnel_status(&report, now);
        assert_eq!(t.state.as_deref(), Some("Ready"));
        assert_eq!(t.register_ms, Some(7));
        assert_eq!(t.handshake_ms, Some(155));
        assert_eq!(t.tunnel_ms, None);
        assert_eq!(t.exclude_cidrs, ["10.0.0.0/8"]);
        assert_eq!(t.node_exclude_cidrs, ["169.254.169.254/32"]);
        assert_eq!(t.default_route.as_deref(), Some("staticEgressGateway"));
        let failed = ReportRequest {
            failed_phase: Some(AddPhase::Handshake),
            routes: None,
            ..report
        };
        let t = tunnel_status(&failed, Time(Timestamp::from_second(1).unwrap()));
        assert_eq!(t.state.as_deref(), Some("Failed"));
        assert_eq!(t.failed_phase.as_deref(), Some("handshake"));
        assert!(t.exclude_cidrs.is_empty());
    }
}
