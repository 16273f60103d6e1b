//! Deletion semantics: preconditions, propagation policy (the `orphan`/`foregroundDeletion`
//! finalizers the garbage collector acts on), graceful deletion of objects with finalizers
//! (`deletionTimestamp` only) and namespaces (Terminating), and immediate removal otherwise.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects::{
    finalizers, has_pending_finalizers, is_deleting, meta_mut, meta_str, now, set_finalizers,
    version_of,
};
use crate::resource::ResourceInfo;
use crate::store::ObjKey;
use crate::world::{World, WriteOpts};

/// `DeleteOptions` from the body and query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// The client's identity; `None` for the server's own deletions (garbage collection,
    /// namespace cleanup), which admission policies do not see.
    pub user: Option<crate::identity::UserInfo>,
    /// The URL's version (what admission policies see), empty for internal deletions.
    pub version: String,
}

impl DeleteOpts {
    /// Reads a `DeleteOptions` body (JSON), keeping query values where the body is silent.
    pub fn merge_body(&mut self, body: &Value) -> Result<(), ApiError> {
        if body.is_null() {
            return Ok(());
        }
        if !body.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be an object"));
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(p.to_string());
        }
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            self.propagation = Some("Orphan".into());
        }
        if let Some(uid) = body.pointer("/preconditions/uid").and_then(Value::as_str) {
            self.uid = Some(uid.to_string());
        }
        if let Some(rv) = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            self.resource_version = Some(rv.to_string());
        }
        if body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"))
        {
            self.dry_run = true;
        }
        Ok(())
    }

    fn finalizer(&self) -> Result<Option<&'static str>, ApiError> {
        match self.propagation.as_deref() {
            None | Some("Background") => Ok(None),
            Some("Foreground") => Ok(Some("foregroundDeletion")),
            Some("Orphan") => Ok(Some("orphan")),
            Some(other) => Err(ApiError::bad_request(format!(
                "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// The result of a delete.
#[derive(Debug, Clone)]
pub struct Deleted {
    /// The object: removed (with the deletion's rv) or marked for deletion.
    pub object: Value,
    /// Whether it is gone now.
    pub gone: bool,
}

impl World {
    /// Deletes one object.
    pub fn delete(
        &mut self,
        res: &ResourceInfo,
        key: &ObjKey,
        opts: &DeleteOpts,
    ) -> Result<Deleted, ApiError> {
        let Some(mut obj) = self.store.get(key).cloned() else {
            return Err(ApiError::not_found(res.subject(), &key.name));
        };
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
        if let Some(want) = &opts.uid
            && *want != uid
        {
            return Err(ApiError::conflict(
                res.subject(),
                &key.name,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        let rv = meta_str(&obj, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if let Some(want) = &opts.resource_version
            && *want != rv
        {
            return Err(ApiError::conflict(
                res.subject(),
                &key.name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                ),
            ));
        }
        if opts.user.is_some() {
            let version = Some(opts.version.clone())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| version_of(&obj));
            let write = WriteOpts {
                version,
                user: opts.user.clone(),
                dry_run: opts.dry_run,
                ..WriteOpts::default()
            };
            // Warnings of a deletion are not sent (the answer carries none here).
            let old = res.present(obj.clone(), &write.version);
            self.admit_policies(res, &write, "DELETE", None, Some(&old))?;
        }
        let mut list = finalizers(&obj);
        if let Some(f) = opts.finalizer()?
            && !list.iter().any(|x| x == f)
        {
            list.push(f.to_string());
        }
        let is_namespace = res.group.is_empty() && res.plural == "namespaces";
        let mut marked = obj.clone();
        set_finalizers(&mut marked, &list);
        if !has_pending_finalizers(&marked) {
            if opts.dry_run {
                return Ok(Deleted {
                    object: obj,
                    gone: true,
                });
            }
            let removed = self.remove(res, key).unwrap_or(obj);
            return Ok(Deleted {
                object: removed,
                gone: true,
            });
        }
        if is_deleting(&obj) && list == finalizers(&obj) {
            return Ok(Deleted {
                object: obj,
                gone: false,
            });
        }
        set_finalizers(&mut obj, &list);
        if !is_deleting(&obj) {
            let generation = obj
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if let Some(meta) = meta_mut(&mut obj) {
                meta.insert("deletionTimestamp".into(), json!(now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                meta.insert("generation".into(), json!(generation + 1));
            }
            if is_namespace {
                obj["status"]["phase"] = json!("Terminating");
            }
        }
        if opts.dry_run {
            return Ok(Deleted {
                object: obj,
                gone: false,
            });
        }
        let stored = self.store.put(key.clone(), obj);
        Ok(Deleted {
            object: stored,
            gone: false,
        })
    }

    /// Deletes every object of `res` in `namespace` accepted by `filter`; returns them.
    pub fn delete_collection(
        &mut self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        filter: impl Fn(&Value) -> bool,
        opts: &DeleteOpts,
    ) -> Result<Vec<Value>, ApiError> {
        let keys: Vec<ObjKey> = self
            .store
            .list(res.storage_group(), &res.plural, namespace)
            .filter(|(_, v)| filter(v))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in keys {
            out.push(self.delete(res, &key, opts)?.object);
        }
        Ok(out)
    }
}
