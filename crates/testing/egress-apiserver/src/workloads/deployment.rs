//! The Deployment controller's decision, pure: which ReplicaSet runs the current template
//! (created as `<deployment>-<pod-template-hash>`), how far to scale it and the old ones
//! (RollingUpdate within maxSurge/maxUnavailable, or Recreate), which old ReplicaSets to
//! forget beyond `revisionHistoryLimit`, and the status and conditions `kubectl rollout
//! status` reads.

use serde_json::{Value, json};

use super::replicaset::omit_zeros;
use crate::store::ObjKey;

/// The label that ties pods to their ReplicaSet's template.
pub const HASH_LABEL: &str = "pod-template-hash";
/// The annotation of the revision a ReplicaSet (and its Deployment) runs.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// A ReplicaSet controlled by the Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRs {
    /// Where it is stored.
    pub key: ObjKey,
    /// `spec.replicas`.
    pub replicas: i64,
    /// `status.replicas`: pods that exist.
    pub current: i64,
    /// `status.readyReplicas`.
    pub ready: i64,
    /// `status.availableReplicas`.
    pub available: i64,
    /// `spec.template` without the pod-template-hash label.
    pub template: Value,
    /// Its revision annotation.
    pub revision: i64,
}

/// A Deployment and its ReplicaSets.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployView {
    /// Name.
    pub name: String,
    /// `spec.replicas`.
    pub replicas: i64,
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec.template`.
    pub template: Value,
    /// `spec.strategy`.
    pub strategy: Value,
    /// `spec.revisionHistoryLimit`.
    pub history_limit: i64,
    /// `status.conditions` as they are (times are kept unless a condition changes).
    pub conditions: Vec<Value>,
    /// Its ReplicaSets.
    pub rsets: Vec<OwnedRs>,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the ReplicaSet of the current template.
    Create {
        /// `<deployment>-<hash>`.
        name: String,
        /// The hash label value.
        hash: String,
        /// Initial `spec.replicas`.
        replicas: i64,
        /// Revision annotation.
        revision: i64,
    },
    /// Set a ReplicaSet's `spec.replicas`.
    Scale {
        /// Which.
        key: ObjKey,
        /// To.
        replicas: i64,
    },
    /// Delete an old, empty ReplicaSet beyond the history limit.
    Delete {
        /// Which.
        key: ObjKey,
    },
}

/// What to do and report.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployPlan {
    /// Changes, in order.
    pub actions: Vec<Action>,
    /// The status (from the ReplicaSets as they are now).
    pub status: Value,
    /// The revision the Deployment is at.
    pub revision: i64,
}

/// kube-controller-manager's pod-template-hash: FNV-32a of the template, its decimal string
/// "safe-encoded" into consonants and digits (the hash differs from Go's, whose input is
/// the Go struct's dump, but has the same form and stability). The decimal string is padded
/// to 10 digits, so names always have the `<name>-<10>-<5>` shape tools match on.
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = canonical(template).to_string();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:010}")
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// The value with every object's keys in order (hashes must not depend on insertion order).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// `template` without the pod-template-hash label (how a ReplicaSet's template is compared).
pub fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
        if labels.is_empty()
            && let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("labels");
        }
    }
    t
}

/// An int-or-percent of `total` (`25%` rounds up for surge, down for unavailability).
fn resolve(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            let scaled = total * pct;
            if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }
        }
        _ => resolve(Some(&json!("25%")), total, round_up),
    }
}

fn recreate(d: &DeployView) -> bool {
    d.strategy.get("type").and_then(Value::as_str) == Some("Recreate")
}

/// (maxSurge, maxUnavailable) of a RollingUpdate Deployment (both 0 means 1 unavailable).
fn limits(d: &DeployView) -> (i64, i64) {
    if recreate(d) {
        return (0, d.replicas);
    }
    let ru = d.strategy.get("rollingUpdate");
    let surge = resolve(ru.and_then(|r| r.get("maxSurge")), d.replicas, true);
    let unavailable = resolve(ru.and_then(|r| r.get("maxUnavailable")), d.replicas, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The plan for one Deployment at time `now`.
pub fn plan(d: &DeployView, now: &str) -> DeployPlan {
    let template = without_hash(&d.template);
    let new = d.rsets.iter().find(|r| r.template == template);
    let olds: Vec<&OwnedRs> = {
        let mut o: Vec<&OwnedRs> = d.rsets.iter().filter(|r| r.template != template).collect();
        o.sort_by_key(|r| r.revision);
        o
    };
    let max_revision = d.rsets.iter().map(|r| r.revision).max().unwrap_or(0);
    let old_total: i64 = olds.iter().map(|r| r.replicas).sum();
    let (surge, max_unavailable) = limits(d);
    let mut actions = Vec::new();
    let revision = match new {
        None => {
            let hash = template_hash(&template);
            let replicas = if recreate(d) {
                if olds.iter().any(|r| r.replicas > 0 || r.current > 0) {
                    0
                } else {
                    d.replicas
                }
            } else if old_total == 0 {
                d.replicas
            } else {
                (d.replicas + surge - old_total).clamp(0, d.replicas)
            };
            actions.push(Action::Create {
                name: format!("{}-{hash}", d.name),
                hash,
                replicas,
                revision: max_revision + 1,
            });
            max_revision + 1
        }
        Some(new) => {
            if recreate(d) {
                plan_recreate(d, new, &olds, &mut actions);
            } else {
                plan_rolling(d, new, &olds, surge, max_unavailable, &mut actions);
            }
            new.revision
        }
    };
    prune_history(d, &olds, &mut actions);
    DeployPlan {
        actions,
        status: status(d, new, max_unavailable, now),
        revision,
    }
}

fn plan_recreate(d: &DeployView, new: &OwnedRs, olds: &[&OwnedRs], actions: &mut Vec<Action>) {
    let old_running = olds.iter().any(|r| r.replicas > 0 || r.current > 0);
    for r in olds.iter().filter(|r| r.replicas > 0) {
        actions.push(Action::Scale {
            key: r.key.clone(),
            replicas: 0,
        });
    }
    if !old_running && new.replicas != d.replicas {
        actions.push(Action::Scale {
            key: new.key.clone(),
            replicas: d.replicas,
        });
    }
}

fn plan_rolling(
    d: &DeployView,
    new: &OwnedRs,
    olds: &[&OwnedRs],
    surge: i64,
    max_unavailable: i64,
    actions: &mut Vec<Action>,
) {
    let total: i64 = new.replicas + olds.iter().map(|r| r.replicas).sum::<i64>();
    let new_target = if new.replicas > d.replicas {
        d.replicas
    } else {
        let room = d.replicas + surge - total;
        if room > 0 {
            (new.replicas + room).min(d.replicas)
        } else {
            new.replicas
        }
    };
    if new_target != new.replicas {
        actions.push(Action::Scale {
            key: new.key.clone(),
            replicas: new_target,
        });
    }
    // Old pods go as availability allows: unhealthy ones at once, available ones only while
    // at least replicas - maxUnavailable stay available.
    let available: i64 = new.available + olds.iter().map(|r| r.available).sum::<i64>();
    let mut removable = (available - (d.replicas - max_unavailable)).max(0);
    for r in olds.iter().filter(|r| r.replicas > 0) {
        let unhealthy = (r.replicas - r.available).max(0);
        let take = removable.min(r.replicas - unhealthy);
        removable -= take;
        let target = r.replicas - unhealthy - take;
        if target != r.replicas {
            actions.push(Action::Scale {
                key: r.key.clone(),
                replicas: target,
            });
        }
    }
}

fn prune_history(d: &DeployView, olds: &[&OwnedRs], actions: &mut Vec<Action>) {
    let empty: Vec<&&OwnedRs> = olds
        .iter()
        .filter(|r| r.replicas == 0 && r.current == 0)
        .collect();
    let excess = empty
        .len()
        .saturating_sub(usize::try_from(d.history_limit).unwrap_or(0));
    for r in empty.into_iter().take(excess) {
        actions.push(Action::Delete { key: r.key.clone() });
    }
}

fn condition(
    old: &[Value],
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> Value {
    let prev = old.iter().find(|c| c["type"] == kind);
    let same_status = prev.is_some_and(|c| c["status"] == status);
    let unchanged =
        same_status && prev.is_some_and(|c| c["reason"] == reason && c["message"] == message);
    let keep = |field: &str| {
        prev.and_then(|c| c.get(field))
            .cloned()
            .unwrap_or(json!(now))
    };
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": if unchanged { keep("lastUpdateTime") } else { json!(now) },
        "lastTransitionTime": if same_status { keep("lastTransitionTime") } else { json!(now) },
    })
}

fn status(d: &DeployView, new: Option<&OwnedRs>, max_unavailable: i64, now: &str) -> Value {
    let sum = |f: fn(&OwnedRs) -> i64| d.rsets.iter().map(f).sum::<i64>();
    let replicas = sum(|r| r.current);
    let ready = sum(|r| r.ready);
    let available = sum(|r| r.available);
    let spec_total = sum(|r| r.replicas);
    let updated = new.map_or(0, |r| r.current);
    let (avail_status, avail_reason, avail_msg) = if available >= d.replicas - max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let (prog_reason, prog_msg) = match new {
        None => (
            "NewReplicaSetCreated",
            "Created new replica set".to_string(),
        ),
        Some(n) => {
            let name = &n.key.name;
            let complete =
                updated == d.replicas && replicas == d.replicas && n.available == d.replicas;
            if complete {
                (
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{name}\" has successfully progressed."),
                )
            } else {
                (
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{name}\" is progressing."),
                )
            }
        }
    };
    let mut status = json!({
        "observedGeneration": d.generation,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (spec_total.max(d.replicas) - available).max(0),
        "conditions": [
            condition(&d.conditions, "Available", avail_status, avail_reason, avail_msg, now),
            condition(&d.conditions, "Progressing", "True", prog_reason, &prog_msg, now),
        ],
    });
    omit_zeros(
        &mut status,
        &[
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ],
    );
    status
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn key(name: &str) -> ObjKey {
        ObjKey {
            name: name.into(),
            ..Default::default()
        }
    }

    fn tpl(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}})
    }

    fn rs(name: &str, image: &str, replicas: i64, available: i64, revision: i64) -> OwnedRs {
        OwnedRs {
            key: key(name),
            replicas,
            current: replicas,
            ready: available,
            available,
            template: tpl(image),
            revision,
        }
    }

    fn deploy(replicas: i64, image: &str, rsets: Vec<OwnedRs>) -> DeployView {
        DeployView {
            name: "web".into(),
            replicas,
            generation: 1,
            template: tpl(image),
            strategy: json!({"type": "RollingUpdate"}),
            history_limit: 10,
            conditions: vec![],
            rsets,
        }
    }

    #[test]
    fn a_new_deployment_gets_one_replicaset_with_every_replica() {
        let p = plan(&deploy(3, "v1", vec![]), "t");
        let Action::Create {
            name,
            hash,
            replicas,
            revision,
        } = &p.actions[0]
        else {
            panic!("{:?}", p.actions)
        };
        assert_eq!(
            (name.as_str(), *replicas, *revision),
            (format!("web-{hash}").as_str(), 3, 1)
        );
        assert_eq!(hash, &template_hash(&tpl("v1")), "stable");
        assert_eq!(hash.len(), 10);
        assert_ne!(template_hash(&tpl("v1")), template_hash(&tpl("v2")));
        assert_eq!(p.status["conditions"][1]["reason"], "NewReplicaSetCreated");
    }

    #[test]
    fn a_template_change_rolls_within_surge_and_unavailability() {
        // 4 replicas: maxSurge 1, maxUnavailable 1.
        let d = deploy(4, "v2", vec![rs("web-old", "v1", 4, 4, 1)]);
        let p = plan(&d, "t");
        assert!(
            matches!(
                &p.actions[0],
                Action::Create {
                    replicas: 1,
                    revision: 2,
                    ..
                }
            ),
            "{:?}",
            p.actions
        );
        // New RS exists with 1 (not yet available): one old pod may go.
        let d = deploy(
            4,
            "v2",
            vec![rs("web-old", "v1", 4, 4, 1), rs("web-new", "v2", 1, 0, 2)],
        );
        let p = plan(&d, "t");
        assert_eq!(
            p.actions,
            vec![Action::Scale {
                key: key("web-old"),
                replicas: 3
            }]
        );
        // Everything new is available: the old RS goes to 0.
        let d = deploy(
            4,
            "v2",
            vec![rs("web-old", "v1", 1, 1, 1), rs("web-new", "v2", 4, 4, 2)],
        );
        assert_eq!(
            plan(&d, "t").actions,
            vec![Action::Scale {
                key: key("web-old"),
                replicas: 0
            }]
        );
    }

    #[test]
    fn scaling_changes_only_the_current_replicaset() {
        let d = deploy(1, "v1", vec![rs("web-a", "v1", 3, 3, 1)]);
        assert_eq!(
            plan(&d, "t").actions,
            vec![Action::Scale {
                key: key("web-a"),
                replicas: 1
            }]
        );
        let d = deploy(5, "v1", vec![rs("web-a", "v1", 3, 3, 1)]);
        assert_eq!(
            plan(&d, "t").actions,
            vec![Action::Scale {
                key: key("web-a"),
                replicas: 5
            }]
        );
    }

    #[test]
    fn status_tells_rollout_status_when_it_is_done() {
        let mut d = deploy(2, "v1", vec![rs("web-a", "v1", 2, 2, 1)]);
        let p = plan(&d, "t1");
        assert!(p.actions.is_empty());
        assert_eq!(p.status["updatedReplicas"], 2);
        assert_eq!(p.status["availableReplicas"], 2);
        assert_eq!(p.status["conditions"][0]["status"], "True");
        assert_eq!(
            p.status["conditions"][1]["reason"],
            "NewReplicaSetAvailable"
        );
        // Unchanged conditions keep their times.
        d.conditions = p.status["conditions"].as_array().unwrap().clone();
        let again = plan(&d, "t2");
        assert_eq!(again.status["conditions"][1]["lastUpdateTime"], "t1");
    }

    #[test]
    fn recreate_stops_old_pods_before_starting_new_ones() {
        let mut d = deploy(2, "v2", vec![rs("web-old", "v1", 2, 2, 1)]);
        d.strategy = json!({"type": "Recreate"});
        assert!(matches!(
            &plan(&d, "t").actions[0],
            Action::Create { replicas: 0, .. }
        ));
        d.rsets.push(rs("web-new", "v2", 0, 0, 2));
        assert_eq!(
            plan(&d, "t").actions,
            vec![Action::Scale {
                key: key("web-old"),
                replicas: 0
            }]
        );
        d.rsets[0] = rs("web-old", "v1", 0, 0, 1);
        assert_eq!(
            plan(&d, "t").actions,
            vec![Action::Scale {
                key: key("web-new"),
                replicas: 2
            }]
        );
    }

    #[test]
    fn old_empty_replicasets_beyond_the_history_limit_go() {
        let mut d = deploy(
            1,
            "v3",
            vec![
                rs("a", "v1", 0, 0, 1),
                rs("b", "v2", 0, 0, 2),
                rs("c", "v3", 1, 1, 3),
            ],
        );
        d.history_limit = 1;
        assert_eq!(
            plan(&d, "t").actions,
            vec![Action::Delete { key: key("a") }]
        );
    }
}
