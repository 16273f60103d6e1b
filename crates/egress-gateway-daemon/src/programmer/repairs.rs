//! What a full cycle did about drift (`drift` finds it): which repairs its apply carried out
//! and which failed, taken from what the apply returned; then published as one count per
//! item in `drift_total{kind}`, records in the GatewayStatus (with the peers the repair put
//! back no longer marked missing), a Warning Event on the PodEndpoint or the gateway
//! concerned (at most [`MAX_EVENTS`] per cycle) and a log line.

use std::collections::BTreeMap;

use egress_api::Drift;
use egress_dataplane::control::ApplyReport;
use egress_dataplane::{ApplyError, ObservedState, Op};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::drift::{Change, Found, find};
use super::{Programmer, ReportKind, error_chain};
use crate::report::Report;
use crate::translate::ObjectKey;

/// Most drift Events one cycle sends (a deleted device drifts every peer at once; the status
/// and the metric carry the rest).
const MAX_EVENTS: usize = 10;
/// Most drift log lines one cycle writes (then one summary).
const MAX_LOG_LINES: usize = 20;

/// One drifted item and the outcome of its repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// What drifted.
    pub found: Found,
    /// `Err(why)` when the repair failed or was not reached.
    pub outcome: Result<(), String>,
}

/// The repairs of one full cycle, by repairing op (a later attempt of the same cycle, after a
/// gateway was held back, replaces an earlier one).
#[derive(Debug, Default)]
pub struct Repairs(BTreeMap<String, Repair>);

impl Repairs {
    /// Notes the outcome of `found` from the apply of `ops`.
    pub fn note(&mut self, found: Vec<Found>, result: &Result<ApplyReport, ApplyError>) {
        for f in found {
            let outcome = match result {
                Ok(report) => match report
                    .peer_failures
                    .iter()
                    // Both are the repairing op's one-line form.
                    .find(|p| p.op == f.repair)
                {
                    Some(p) => Err(error_chain(&p.error)),
                    None => Ok(()),
                },
                Err(e) if f.index < e.index => Ok(()),
                Err(e) if f.index == e.index => Err(error_chain(e)),
                Err(e) => Err(format!("not applied: an earlier step failed: {}", e.op)),
            };
            self.0
                .insert(f.repair.clone(), Repair { found: f, outcome });
        }
    }

    /// The repairs, in plan order.
    pub fn into_sorted(self) -> Vec<Repair> {
        let mut all: Vec<Repair> = self.0.into_values().collect();
        all.sort_by_key(|r| r.found.index);
        all
    }
}

/// The GatewayStatus record of a repair found at `at`.
pub fn record(r: &Repair, at: &Time) -> Drift {
    Drift {
        kind: r.found.kind.to_owned(),
        change: r.found.change.as_str().to_owned(),
        pod_endpoint: r.found.pod_endpoint.as_ref().map(ToString::to_string),
        interface_name: r.found.interface.clone(),
        repair: r.found.repair.clone(),
        detected_time: at.clone(),
        repaired: r.outcome.is_ok(),
        error: r.outcome.clone().err(),
    }
}

/// One line for the Event and the log.
pub fn describe(r: &Repair) -> String {
    let f = &r.found;
    let what = match (&f.pod_endpoint, f.kind) {
        (Some(pe), "peer") => format!("the peer of PodEndpoint {pe}"),
        (Some(pe), "route") => format!("the route to PodEndpoint {pe}"),
        (_, kind) => format!("a {kind} item"),
    };
    let place = f.interface.as_deref().unwrap_or("the node");
    let how = match f.change {
        Change::Missing => format!("{what} was missing from {place}"),
        Change::Changed => format!("{what} on {place} was changed"),
        Change::Unexpected => format!("{what} the daemon never programmed was on {place}"),
    };
    match &r.outcome {
        Ok(()) => format!("{how} (changed outside the daemon); repaired: {}", f.repair),
        Err(e) => format!(
            "{how} (changed outside the daemon); repair failed, retried at the next resync: {}: {e}",
            f.repair
        ),
    }
}

impl Programmer {
    /// The drift in `ops` against `observed`, if the previous desired state is known to be
    /// in the kernel (`trusted`).
    pub(super) fn drift(&self, trusted: bool, observed: &ObservedState, ops: &[Op]) -> Vec<Found> {
        match (&self.desired, trusted) {
            (Some(previous), true) => find(previous, observed, ops),
            _ => Vec::new(),
        }
    }

    /// Publishes the drift one full cycle repaired (see the module docs).
    pub(super) fn publish_drift(&mut self, repairs: Repairs) {
        let repairs = repairs.into_sorted();
        if repairs.is_empty() {
            return;
        }
        let at = Time(Timestamp::now());
        let mut restored = Vec::new();
        for (i, r) in repairs.iter().enumerate() {
            self.out.metrics.drift(r.found.kind);
            if r.found.kind == "peer"
                && r.found.change != Change::Unexpected
                && r.outcome.is_ok()
                && let Some(pe) = &r.found.pod_endpoint
            {
                restored.push(pe.clone());
            }
            if i < MAX_LOG_LINES {
                tracing::warn!(
                    kind = r.found.kind,
                    change = r.found.change.as_str(),
                    "{}",
                    describe(r)
                );
            }
        }
        if repairs.len() > MAX_LOG_LINES {
            tracing::warn!(
                items = repairs.len(),
                "drift: {} more items changed outside the daemon",
                repairs.len() - MAX_LOG_LINES
            );
        }
        self.drift_events(&repairs);
        let records = repairs.iter().map(|r| record(r, &at)).collect();
        self.out.status.record_drift(records, &restored);
    }

    fn drift_events(&self, repairs: &[Repair]) {
        let Some(tx) = &self.out.reports else { return };
        let objects = repairs.iter().filter_map(|r| {
            let object = match (&r.found.pod_endpoint, &r.found.interface) {
                (Some(pe), _) => self.object_ref(ReportKind::PodEndpoint, pe),
                (None, Some(iface)) => self
                    .sgc_of_interface(iface)
                    .and_then(|k| self.object_ref(ReportKind::Gateway, &k)),
                (None, None) => None,
            };
            object.map(|o| (o, r))
        });
        for (object, r) in objects.take(MAX_EVENTS) {
            let _ = tx.send(Report {
                object,
                warning: true,
                reason: if r.outcome.is_ok() {
                    "DriftRepaired"
                } else {
                    "DriftRepairFailed"
                }
                .into(),
                note: describe(r),
            });
        }
    }

    fn sgc_of_interface(&self, iface: &str) -> Option<ObjectKey> {
        let desired = self.desired.as_ref()?;
        desired
            .gateways
            .values()
            .find(|g| Self::interface(g.port).as_str() == iface)
            .map(|g| g.sgc.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use egress_dataplane::DataplaneError;

    fn found(index: usize) -> Found {
        Found {
            index,
            kind: "peer",
            change: Change::Missing,
            pod_endpoint: Some(ObjectKey::new("demo", "web")),
            interface: Some("wg-6000".into()),
            repair: format!("op {index}"),
        }
    }

    #[test]
    fn outcomes_come_from_what_the_apply_returned() {
        let mut r = Repairs::default();
        let failed = || ApplyError {
            index: 1,
            op: "op 1".into(),
            source: DataplaneError::Netns(egress_dataplane::netns::NetnsError::Open {
                netns: egress_dataplane::NetnsRef::Current,
                source: std::io::Error::other("gone"),
            }),
        };
        r.note(vec![found(0), found(1), found(2)], &Err(failed()));
        let got: Vec<_> = r
            .into_sorted()
            .into_iter()
            .map(|r| (r.found.index, r.outcome.is_ok()))
            .collect();
        assert_eq!(got, [(0, true), (1, false), (2, false)]);

        // A later attempt of the same cycle replaces the earlier outcome.
        let mut r = Repairs::default();
        r.note(vec![found(1)], &Err(failed()));
        r.note(vec![found(1)], &Ok(ApplyReport::default()));
        let all = r.into_sorted();
        assert_eq!(all.len(), 1);
        assert!(all[0].outcome.is_ok());
        let text = describe(&all[0]);
        assert!(
            text.starts_with("the peer of PodEndpoint demo/web was missing from wg-6000 (changed outside the daemon); repaired: op 1"),
            "{text}"
        );
        let d = record(&all[0], &Time(Timestamp::now()));
        assert_eq!(
            (
                d.kind.as_str(),
                d.change.as_str(),
                d.repaired,
                d.pod_endpoint.as_deref()
            ),
            ("peer", "missing", true, Some("demo/web"))
        );
    }
}
