//! What kube-controller-manager's garbage collector and namespace controller do, run by the
//! server after writes: delete dependents whose owners are gone (background), delete dependents
//! of owners in foreground deletion and release the owner once blocking dependents are gone,
//! orphan dependents of owners deleted with `Orphan`, and empty terminating namespaces before
//! removing them.

use serde_json::{Value, json};

use crate::delete::DeleteOpts;
use crate::objects::{finalizers, is_deleting, meta_mut, meta_str, set_finalizers, version_of};
use crate::store::ObjKey;
use crate::world::{World, WriteOpts};

const GC_MANAGER: &str = "kube-controller-manager";

/// What one collection pass needs to know about an object.
struct Seen {
    key: ObjKey,
    uid: String,
    owners: Vec<(String, bool)>,
    deleting: bool,
    finalizers: Vec<String>,
}

fn owner_uids(obj: &Value) -> Vec<(String, bool)> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| {
                    let uid = r.get("uid")?.as_str()?.to_string();
                    let block = r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true);
                    Some((uid, block))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl World {
    /// Runs collection passes until nothing changes; returns whether anything did.
    pub fn collect_garbage(&mut self) -> bool {
        let mut any = false;
        for _ in 0..100 {
            if !self.gc_pass() {
                break;
            }
            any = true;
        }
        any
    }

    /// Whether one of `obj`'s owners no longer exists.
    fn has_dangling_owner(&self, obj: &Value) -> bool {
        obj.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| self.store.key_of_uid(u).is_none())
                })
            })
    }

    fn rewrite(&mut self, key: &ObjKey, edit: impl FnOnce(&mut Value)) -> bool {
        let Some(res) = self.registry.by_group_resource(&key.group, &key.resource) else {
            return false;
        };
        let Some(mut obj) = self.store.get(key).cloned() else {
            return false;
        };
        edit(&mut obj);
        let opts = WriteOpts {
            version: version_of(&obj),
            manager: GC_MANAGER.into(),
            ..WriteOpts::default()
        };
        match self.update(&res, &opts, key, obj) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, ?key, "garbage collector update failed");
                false
            }
        }
    }

    fn delete_background(&mut self, key: &ObjKey) -> bool {
        let Some(res) = self.registry.by_group_resource(&key.group, &key.resource) else {
            return false;
        };
        self.delete(&res, key, &DeleteOpts::default()).is_ok()
    }

    fn dependents(&self, owner_uid: &str) -> Vec<(ObjKey, Value)> {
        self.store
            .all()
            .filter(|(_, v)| owner_uids(v).iter().any(|(u, _)| u == owner_uid))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn remove_finalizer(&mut self, key: &ObjKey, name: &str) -> bool {
        self.rewrite(key, |obj| {
            let list: Vec<String> = finalizers(obj).into_iter().filter(|f| f != name).collect();
            set_finalizers(obj, &list);
        })
    }

    fn gc_pass(&mut self) -> bool {
        // Only what the pass decides on is copied, and only for the objects it can act on
        // (being deleted, or an owner gone): this runs after every write, and copying every
        // object's metadata each time was most of the server's CPU with a few hundred pods.
        let snapshot: Vec<Seen> = self
            .store
            .all()
            .filter(|(_, v)| is_deleting(v) || self.has_dangling_owner(v))
            .map(|(k, v)| Seen {
                key: k.clone(),
                uid: meta_str(v, "uid").unwrap_or_default().to_string(),
                owners: owner_uids(v),
                deleting: is_deleting(v),
                finalizers: if is_deleting(v) {
                    finalizers(v)
                } else {
                    Vec::new()
                },
            })
            .collect();
        let mut changed = false;
        for seen in &snapshot {
            if seen.owners.is_empty() {
                continue;
            }
            let dangling: Vec<String> = seen
                .owners
                .iter()
                .filter(|(u, _)| self.store.key_of_uid(u).is_none())
                .map(|(u, _)| u.clone())
                .collect();
            if dangling.is_empty() {
                continue;
            }
            if dangling.len() == seen.owners.len() {
                if !seen.deleting {
                    changed |= self.delete_background(&seen.key);
                }
            } else {
                changed |= self.rewrite(&seen.key, |o| drop_owner_refs(o, &dangling));
            }
        }
        for seen in snapshot.iter().filter(|s| s.deleting) {
            let (key, uid) = (&seen.key, &seen.uid);
            if seen.finalizers.iter().any(|f| f == "orphan") {
                for (dep, _) in self.dependents(uid) {
                    let uid = uid.clone();
                    self.rewrite(&dep, |o| drop_owner_refs(o, &[uid]));
                }
                changed |= self.remove_finalizer(key, "orphan");
            } else if seen.finalizers.iter().any(|f| f == "foregroundDeletion") {
                let deps = self.dependents(uid);
                for (dep, v) in &deps {
                    if !is_deleting(v) {
                        changed |= self.delete_background(dep);
                    }
                }
                let blocking = self
                    .dependents(uid)
                    .into_iter()
                    .any(|(_, v)| owner_uids(&v).iter().any(|(u, block)| u == uid && *block));
                if !blocking {
                    changed |= self.remove_finalizer(key, "foregroundDeletion");
                }
            }
            if key.group.is_empty() && key.resource == "namespaces" {
                changed |= self.finalize_namespace(key);
            }
        }
        changed
    }

    fn finalize_namespace(&mut self, key: &ObjKey) -> bool {
        let contents: Vec<(ObjKey, bool)> = self
            .store
            .all()
            .filter(|(k, _)| k.namespace == key.name)
            .map(|(k, v)| (k.clone(), is_deleting(v)))
            .collect();
        if contents.is_empty() {
            let has_spec_finalizers = self
                .store
                .get(key)
                .and_then(|v| v.pointer("/spec/finalizers"))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            return has_spec_finalizers
                && self.rewrite(key, |o| o["spec"]["finalizers"] = json!([]));
        }
        let mut changed = false;
        for (k, deleting) in contents {
            if !deleting {
                changed |= self.delete_background(&k);
            }
        }
        changed
    }
}

fn drop_owner_refs(obj: &mut Value, uids: &[String]) {
    let Some(meta) = meta_mut(obj) else { return };
    let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") else {
        return;
    };
    refs.retain(|r| {
        r.get("uid")
            .and_then(Value::as_str)
            .is_none_or(|u| !uids.iter().any(|x| x == u))
    });
    if refs.is_empty() {
        meta.remove("ownerReferences");
    }
}
