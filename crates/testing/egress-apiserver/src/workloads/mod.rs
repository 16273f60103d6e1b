//! What kube-controller-manager's deployment and replicaset controllers do, run by the server
//! after writes (like garbage collection): Deployments get a ReplicaSet per template, scaled
//! and rolled (`deployment`), ReplicaSets get their pods (`replicaset`), both report status.
//! Each controller observes the store, plans with a pure function, applies the plan through
//! the world's own write paths (as the server's writes: no admission policies) and writes the
//! status its apply left. Scheduling and running pods is left to a kubelet (the simulator's).
//! The `scale` subresource's conversion is in `scale`.

pub mod deployment;
mod events;
pub mod replicaset;
pub mod scale;

use serde_json::{Value, json};

use crate::delete::DeleteOpts;
use crate::objects::{is_deleting, meta_str, now};
use crate::resource::ResourceInfo;
use crate::store::ObjKey;
use crate::world::{World, WriteOpts};

use deployment::{Action, DeployView, HASH_LABEL, OwnedRs, REVISION};
use replicaset::{PodView, RsView};

const MANAGER: &str = "kube-controller-manager";
/// The `source.component` of the controllers' Events, as kube-controller-manager's.
const DEPLOY_CONTROLLER: &str = "deployment-controller";
const RS_CONTROLLER: &str = "replicaset-controller";

fn opts(subresource: Option<&str>) -> WriteOpts {
    WriteOpts {
        version: "v1".into(),
        subresource: subresource.map(str::to_string),
        manager: MANAGER.into(),
        ..WriteOpts::default()
    }
}

fn int(v: &Value, pointer: &str, default: i64) -> i64 {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// The uid of the object's controller (`ownerReferences[controller=true]`).
fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// A controller owner reference to `obj` of `kind`.
fn owner_ref(obj: &Value, kind: &str) -> Value {
    json!([{
        "apiVersion": "apps/v1", "kind": kind,
        "name": meta_str(obj, "name").unwrap_or_default(),
        "uid": meta_str(obj, "uid").unwrap_or_default(),
        "controller": true, "blockOwnerDeletion": true,
    }])
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

impl World {
    /// One pass of the workload controllers; whether anything was written.
    pub fn run_controllers(&mut self) -> bool {
        // Only pods, ReplicaSets and Deployments decide what they do.
        if self.workload_writes.0 == self.workload_writes.1 {
            return false;
        }
        self.workload_writes.1 = self.workload_writes.0;
        let mut changed = false;
        if let Some(res) = self.resource("apps", "deployments") {
            let keys = self.keys(&res);
            for key in keys {
                changed |= self.reconcile_deployment(&res, &key);
            }
        }
        if let Some(res) = self.resource("apps", "replicasets") {
            let keys = self.keys(&res);
            for key in keys {
                changed |= self.reconcile_replicaset(&res, &key);
            }
        }
        changed
    }

    fn keys(&self, res: &ResourceInfo) -> Vec<ObjKey> {
        self.store
            .list(res.storage_group(), &res.plural, None)
            .filter(|(_, v)| !is_deleting(v))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Views (`view`) of the live objects of `group/plural` in `ns` whose controller is
    /// `uid`. Views, not copies: this runs after every write, and copying a few hundred pods
    /// each time made the controllers most of the server's CPU.
    fn controlled<T>(
        &self,
        (group, plural): (&str, &str),
        ns: &str,
        uid: &str,
        view: impl Fn(&ObjKey, &Value) -> T,
    ) -> Vec<T> {
        self.store
            .list(group, plural, Some(ns))
            .filter(|(_, v)| controller_uid(v) == Some(uid) && !is_deleting(v))
            .map(|(k, v)| view(k, v))
            .collect()
    }

    fn write_status(&mut self, res: &ResourceInfo, key: &ObjKey, status: Value) -> bool {
        let Some(mut obj) = self.store.get(key).cloned() else {
            return false;
        };
        if obj.get("status") == Some(&status) {
            return false;
        }
        obj["status"] = status;
        self.update(res, &opts(Some("status")), key, obj)
            .map_err(|e| tracing::warn!(error = %e, ?key, "controller status update failed"))
            .is_ok()
    }

    fn reconcile_replicaset(&mut self, res: &ResourceInfo, key: &ObjKey) -> bool {
        let Some(rs) = self.store.get(key).cloned() else {
            return false;
        };
        let uid = meta_str(&rs, "uid").unwrap_or_default().to_string();
        let pods = self.controlled(("", "pods"), &key.namespace, &uid, |k, p| PodView {
            key: k.clone(),
            ready: is_ready(p),
            scheduled: p.pointer("/spec/nodeName").is_some_and(|n| !n.is_null()),
            created: meta_str(p, "creationTimestamp")
                .unwrap_or_default()
                .to_string(),
        });
        let view = RsView {
            replicas: int(&rs, "/spec/replicas", 1),
            generation: int(&rs, "/metadata/generation", 1),
            pods,
        };
        let plan = replicaset::plan(&view);
        let mut changed = false;
        if let Some(pods_res) = self.resource("", "pods") {
            for _ in 0..plan.create {
                if let Some(pod) = self.create_pod(&pods_res, &rs, &key.namespace) {
                    let message = format!("Created pod: {pod}");
                    self.record_event(
                        &rs,
                        "ReplicaSet",
                        RS_CONTROLLER,
                        "SuccessfulCreate",
                        message,
                    );
                    changed = true;
                }
            }
            for victim in &plan.delete {
                if self
                    .delete(&pods_res, victim, &DeleteOpts::default())
                    .is_ok()
                {
                    let message = format!("Deleted pod: {}", victim.name);
                    self.record_event(
                        &rs,
                        "ReplicaSet",
                        RS_CONTROLLER,
                        "SuccessfulDelete",
                        message,
                    );
                    changed = true;
                }
            }
        }
        changed | self.write_status(res, key, plan.status)
    }

    /// Creates a pod of `rs`'s template; its name.
    fn create_pod(&mut self, pods: &ResourceInfo, rs: &Value, ns: &str) -> Option<String> {
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut meta = template.get("metadata").cloned().unwrap_or(json!({}));
        meta["generateName"] = json!(format!("{}-", meta_str(rs, "name").unwrap_or_default()));
        meta["namespace"] = json!(ns);
        meta["ownerReferences"] = owner_ref(rs, "ReplicaSet");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": template.get("spec").cloned().unwrap_or(json!({})),
        });
        self.create(pods, &opts(None), Some(ns), pod)
            .map_err(|e| tracing::warn!(error = %e, "replicaset controller failed to create a pod"))
            .ok()
            .and_then(|w| meta_str(&w.object, "name").map(str::to_string))
    }

    fn reconcile_deployment(&mut self, res: &ResourceInfo, key: &ObjKey) -> bool {
        let Some(d) = self.store.get(key).cloned() else {
            return false;
        };
        let Some(rs_res) = self.resource("apps", "replicasets") else {
            return false;
        };
        let uid = meta_str(&d, "uid").unwrap_or_default().to_string();
        let rsets: Vec<OwnedRs> =
            self.controlled(("apps", "replicasets"), &key.namespace, &uid, |k, r| {
                OwnedRs {
                    key: k.clone(),
                    replicas: int(r, "/spec/replicas", 1),
                    current: int(r, "/status/replicas", 0),
                    ready: int(r, "/status/readyReplicas", 0),
                    available: int(r, "/status/availableReplicas", 0),
                    template: deployment::without_hash(
                        &r.pointer("/spec/template").cloned().unwrap_or(json!({})),
                    ),
                    revision: r
                        .pointer(&format!(
                            "/metadata/annotations/{}",
                            REVISION.replace('/', "~1")
                        ))
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                }
            });
        let view = DeployView {
            name: key.name.clone(),
            replicas: int(&d, "/spec/replicas", 1),
            generation: int(&d, "/metadata/generation", 1),
            template: d.pointer("/spec/template").cloned().unwrap_or(json!({})),
            strategy: d.pointer("/spec/strategy").cloned().unwrap_or(json!({})),
            history_limit: int(&d, "/spec/revisionHistoryLimit", 10),
            conditions: d
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            rsets,
        };
        let plan = deployment::plan(&view, &now());
        let mut changed = false;
        for action in &plan.actions {
            changed |= self.apply_deployment_action(&rs_res, &d, action);
        }
        changed |= self.set_revision(res, key, plan.revision);
        changed | self.write_status(res, key, plan.status)
    }

    fn apply_deployment_action(
        &mut self,
        rs_res: &ResourceInfo,
        d: &Value,
        action: &Action,
    ) -> bool {
        let ns = meta_str(d, "namespace").unwrap_or_default().to_string();
        let result = match action {
            Action::Create {
                name,
                hash,
                replicas,
                revision,
            } => {
                let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
                template["metadata"]["labels"][HASH_LABEL] = json!(hash);
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                selector["matchLabels"][HASH_LABEL] = json!(hash);
                let labels = template["metadata"]["labels"].clone();
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {
                        "name": name, "namespace": ns, "labels": labels,
                        "annotations": {
                            REVISION: revision.to_string(),
                            "deployment.kubernetes.io/desired-replicas": int(d, "/spec/replicas", 1).to_string(),
                        },
                        "ownerReferences": owner_ref(d, "Deployment"),
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": template,
                             "minReadySeconds": int(d, "/spec/minReadySeconds", 0)},
                });
                self.create(rs_res, &opts(None), Some(&ns), rs)
                    .map(|_| Some((name.clone(), 0, *replicas)))
            }
            Action::Scale { key, replicas } => match self.store.get(key).cloned() {
                Some(mut rs) => {
                    let from = int(&rs, "/spec/replicas", 1);
                    rs["spec"]["replicas"] = json!(replicas);
                    self.update(rs_res, &opts(None), key, rs)
                        .map(|_| Some((key.name.clone(), from, *replicas)))
                }
                None => Ok(None),
            },
            Action::Delete { key } => self
                .delete(rs_res, key, &DeleteOpts::default())
                .map(|_| None),
        };
        match result {
            Ok(scaled) => {
                if let Some((rs, from, to)) = scaled.filter(|(_, from, to)| from != to) {
                    let message = events::scaled(&rs, from, to);
                    self.record_event(
                        d,
                        "Deployment",
                        DEPLOY_CONTROLLER,
                        "ScalingReplicaSet",
                        message,
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, ?action, "deployment controller write failed");
                false
            }
        }
    }

    fn set_revision(&mut self, res: &ResourceInfo, key: &ObjKey, revision: i64) -> bool {
        let Some(mut d) = self.store.get(key).cloned() else {
            return false;
        };
        let pointer = format!("/metadata/annotations/{}", REVISION.replace('/', "~1"));
        if d.pointer(&pointer).and_then(Value::as_str) == Some(revision.to_string().as_str()) {
            return false;
        }
        if !d["metadata"]["annotations"].is_object() {
            d["metadata"]["annotations"] = json!({});
        }
        d["metadata"]["annotations"][REVISION] = json!(revision.to_string());
        self.update(res, &opts(None), key, d).is_ok()
    }
}
