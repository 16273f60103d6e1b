//! The Events the deployment and replicaset controllers record, as kube-controller-manager's
//! do, so `kubectl describe deployment|replicaset` and `kubectl get events` tell what they
//! did: `ScalingReplicaSet` (a Deployment scaled one of its ReplicaSets), `SuccessfulCreate`
//! and `SuccessfulDelete` (a ReplicaSet created or deleted a pod). One Event per action
//! (no aggregation into `count`: the controllers act once per change).

use serde_json::{Value, json};

use crate::objects::{meta_str, now};
use crate::world::World;

use super::opts;

/// `Scaled up|down replica set NAME from OLD to NEW`, the deployment controller's message.
pub fn scaled(rs: &str, from: i64, to: i64) -> String {
    let way = if to > from { "up" } else { "down" };
    format!("Scaled {way} replica set {rs} from {from} to {to}")
}

impl World {
    /// Records a Normal Event about `involved` (a `kind` object) from `component`; a failure
    /// to record is logged, never fails the controller's action.
    pub(super) fn record_event(
        &mut self,
        involved: &Value,
        kind: &str,
        component: &str,
        reason: &str,
        message: String,
    ) {
        let Some(res) = self.resource("", "events") else {
            return;
        };
        let ns = meta_str(involved, "namespace")
            .unwrap_or_default()
            .to_string();
        let name = meta_str(involved, "name").unwrap_or_default().to_string();
        let at = now();
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion").cloned().unwrap_or(json!("apps/v1")),
                "kind": kind, "name": name, "namespace": ns,
                "uid": meta_str(involved, "uid").unwrap_or_default(),
                "resourceVersion": meta_str(involved, "resourceVersion").unwrap_or_default(),
            },
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "source": {"component": component},
            "firstTimestamp": at, "lastTimestamp": at,
            "reportingComponent": component,
        });
        if let Err(e) = self.create(&res, &opts(None), Some(&ns), event) {
            tracing::warn!(error = %e, reason, "controller failed to record an Event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_messages_say_which_way() {
        assert_eq!(
            scaled("web-1", 0, 2),
            "Scaled up replica set web-1 from 0 to 2"
        );
        assert_eq!(
            scaled("web-1", 3, 1),
            "Scaled down replica set web-1 from 3 to 1"
        );
    }
}
