//! The phase-timing report an annotated pod's ADD sends the manager once it got past
//! registration (`op: report`): how long registering, building the tunnel, waiting for the
//! first handshake and routing took, which phase failed if one did, and the routes the pod got.
//! The manager exports the timings as a histogram and writes the PodEndpoint's
//! `status.tunnel`. Best effort: a short deadline, failures only logged at debug, and ADD's
//! result never depends on it (an older manager answers `badRequest`).

use std::path::Path;
use std::time::{Duration, Instant};

use egress_cni_proto::{AddPhase, Client, PhaseTiming, PodRef, ReportRequest, RoutesReport};

use crate::tunnel::TunnelSpec;

/// How long ADD may spend on the report (the manager answers at once; a restarting or busy
/// manager is not waited for).
const REPORT_WAIT: Duration = Duration::from_millis(300);

/// Phase timings of one ADD, sent when it ends.
#[derive(Debug)]
pub struct AddReport {
    socket: std::path::PathBuf,
    pod: PodRef,
    container_id: String,
    started: Instant,
    marked: Duration,
    phases: Vec<PhaseTiming>,
}

impl AddReport {
    /// Starts timing an ADD that began at `started`.
    pub fn new(socket: &Path, pod: &PodRef, container_id: &str, started: Instant) -> Self {
        Self {
            socket: socket.to_path_buf(),
            pod: pod.clone(),
            container_id: container_id.to_string(),
            started,
            marked: Duration::ZERO,
            phases: Vec::new(),
        }
    }

    /// `phase` ended now.
    pub fn mark(&mut self, phase: AddPhase) {
        let now = self.started.elapsed();
        self.phases.push(PhaseTiming {
            phase,
            seconds: now.saturating_sub(self.marked).as_secs_f64(),
        });
        self.marked = now;
    }

    /// The ADD failed in `phase`.
    pub fn failed(mut self, phase: AddPhase) {
        self.mark(phase);
        self.send(Some(phase), None);
    }

    /// The ADD succeeded with the routes of `spec`: the CIDRs that took effect (IPv6 ones
    /// only when IPv6 went through the tunnel too).
    pub fn succeeded(self, spec: &TunnelSpec) {
        let effective = |cidrs: &[ipnet::IpNet]| {
            cidrs
                .iter()
                .filter(|c| spec.ipv6 || matches!(c, ipnet::IpNet::V4(_)))
                .copied()
                .collect()
        };
        let routes = RoutesReport {
            default_route: spec.default_route,
            exclude_cidrs: effective(&spec.exclude_cidrs),
            node_exclude_cidrs: effective(&spec.sandbox.node_excluded_cidrs),
            ipv6: spec.ipv6,
        };
        self.send(None, Some(routes));
    }

    fn send(self, failed_phase: Option<AddPhase>, routes: Option<RoutesReport>) {
        let request = ReportRequest {
            pod: self.pod,
            container_id: self.container_id,
            failed_phase,
            phases: self.phases,
            routes,
        };
        if let Err(e) = Client::new(&self.socket, REPORT_WAIT).report(request) {
            tracing::debug!(error = %e, "failed to report the ADD's phase timings");
        }
    }
}
