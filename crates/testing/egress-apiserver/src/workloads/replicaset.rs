//! The ReplicaSet controller's decision, pure: from one ReplicaSet and the pods it controls,
//! how many pods to create, which to delete (not ready first, then the newest, as
//! kube-controller-manager ranks them) and the status to report.

use serde_json::{Value, json};

use crate::store::ObjKey;

/// One pod a ReplicaSet controls, as the controller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    /// Where it is stored.
    pub key: ObjKey,
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// Has a node.
    pub scheduled: bool,
    /// `metadata.creationTimestamp` (RFC 3339 sorts by time).
    pub created: String,
}

/// A ReplicaSet and its pods.
#[derive(Debug, Clone, PartialEq)]
pub struct RsView {
    /// `spec.replicas`.
    pub replicas: i64,
    /// `metadata.generation`.
    pub generation: i64,
    /// Pods it controls that are not being deleted.
    pub pods: Vec<PodView>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RsPlan {
    /// Pods to create from the template.
    pub create: usize,
    /// Pods to delete.
    pub delete: Vec<ObjKey>,
    /// The status once done (counts of the pods that remain).
    pub status: Value,
}

/// Ranks pods for deletion: unscheduled, then not ready, then newest first.
fn deletion_order(a: &PodView, b: &PodView) -> std::cmp::Ordering {
    a.scheduled
        .cmp(&b.scheduled)
        .then(a.ready.cmp(&b.ready))
        .then(b.created.cmp(&a.created))
}

/// The plan for one ReplicaSet.
pub fn plan(rs: &RsView) -> RsPlan {
    let want = usize::try_from(rs.replicas.max(0)).unwrap_or(0);
    let have = rs.pods.len();
    let mut ranked = rs.pods.clone();
    ranked.sort_by(deletion_order);
    let delete: Vec<ObjKey> = ranked
        .iter()
        .take(have.saturating_sub(want))
        .map(|p| p.key.clone())
        .collect();
    let remaining: Vec<&PodView> = ranked.iter().skip(delete.len()).collect();
    let ready = remaining.iter().filter(|p| p.ready).count();
    let total = remaining.len() + want.saturating_sub(have);
    let mut status = json!({
        "replicas": total,
        "fullyLabeledReplicas": total,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs.generation,
    });
    omit_zeros(
        &mut status,
        &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
    );
    RsPlan {
        create: want.saturating_sub(have),
        delete,
        status,
    }
}

/// Drops zero counters, as the API's `omitempty` fields are.
pub fn omit_zeros(status: &mut Value, fields: &[&str]) {
    if let Some(m) = status.as_object_mut() {
        for f in fields {
            if m.get(*f).and_then(Value::as_i64) == Some(0) {
                m.remove(*f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn pod(name: &str, ready: bool, created: &str) -> PodView {
        PodView {
            key: ObjKey {
                name: name.into(),
                ..Default::default()
            },
            ready,
            scheduled: true,
            created: created.into(),
        }
    }

    #[test]
    fn scales_up_by_creating_the_missing_pods() {
        let p = plan(&RsView {
            replicas: 3,
            generation: 2,
            pods: vec![pod("a", true, "2025-01-01T00:00:00Z")],
        });
        assert_eq!(p.create, 2);
        assert!(p.delete.is_empty());
        assert_eq!(
            p.status,
            json!({"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 1,
                   "availableReplicas": 1, "observedGeneration": 2})
        );
    }

    #[test]
    fn scales_down_not_ready_then_newest_first() {
        let p = plan(&RsView {
            replicas: 1,
            generation: 1,
            pods: vec![
                pod("old-ready", true, "2025-01-01T00:00:00Z"),
                pod("new-ready", true, "2025-01-02T00:00:00Z"),
                pod("not-ready", false, "2024-12-01T00:00:00Z"),
            ],
        });
        let names: Vec<&str> = p.delete.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, vec!["not-ready", "new-ready"]);
        assert_eq!(p.status["replicas"], 1);
        assert_eq!(p.status["readyReplicas"], 1);
    }

    #[test]
    fn zero_replicas_report_only_the_required_counter() {
        let p = plan(&RsView {
            replicas: 0,
            generation: 3,
            pods: vec![],
        });
        assert_eq!(p.status, json!({"replicas": 0, "observedGeneration": 3}));
    }
}
