//! The API semantics of writes over the store: create (names, uid, namespaces, AlreadyExists)
//! and update (optimistic concurrency, status subresource, immutable metadata, finalizers,
//! generation, no-op detection, deletion once the last finalizer is gone), plus keeping the
//! registry in step with stored CRDs. Deletes and garbage collection live in `delete`/`gc`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::admit;
use crate::crd::{accepted_status, crd_to_resource};
use crate::error::{ApiError, Cause};
use crate::identity::UserInfo;
use crate::managed;
use crate::objects::{
    finalizers, has_pending_finalizers, is_deleting, meta_mut, meta_str, new_uid, now,
    prepare_create, prepare_write, spec_changed, validate_name,
};
use crate::policy;
use crate::query::FieldValidation;
use crate::registry::Registry;
use crate::resource::ResourceInfo;
use crate::store::{ObjKey, Store};

/// The store plus the registry of served resources, guarded by one lock.
#[derive(Debug)]
pub struct World {
    /// Objects and history.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// Writes of pods, ReplicaSets and Deployments so far, and how many of them the workload
    /// controllers have seen: they run after every write, and reconciling every Deployment
    /// over every pod after each Event or PodEndpoint write was most of the server's CPU
    /// with a few hundred pods.
    pub(crate) workload_writes: (u64, u64),
}

/// How a write was asked for.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// The URL's version (objects are answered in it).
    pub version: String,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    /// `fieldManager`, or the user-agent-derived default.
    pub manager: String,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// Ownership was already computed (server-side apply).
    pub managed_fields_done: bool,
    /// The client's identity; `None` for the server's own writes, which admission policies
    /// do not see.
    pub user: Option<UserInfo>,
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored (or as it would be, for dry runs).
    pub object: Value,
    /// `Warning` header texts.
    pub warnings: Vec<String>,
}

const CRD_GROUP: &str = "apiextensions.k8s.io";

fn is_crd(res: &ResourceInfo) -> bool {
    res.group == CRD_GROUP && res.plural == "customresourcedefinitions"
}

/// The key of `name` in `namespace` for `res`.
pub fn key_for(res: &ResourceInfo, namespace: Option<&str>, name: &str) -> ObjKey {
    ObjKey {
        group: res.storage_group().to_string(),
        resource: res.plural.clone(),
        namespace: if res.namespaced {
            namespace.unwrap_or("").to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

fn check_type(res: &ResourceInfo, version: &str, obj: &mut Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    let expected = res.api_version(version);
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(expected),
        Some(v) if v == expected => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(res.kind),
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
    }
    Ok(())
}

fn check_namespace(
    res: &ResourceInfo,
    url_ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let Some(meta) = meta_mut(obj) else {
        return Err(ApiError::bad_request("the request body must be an object"));
    };
    if !res.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let url_ns = url_ns.unwrap_or("");
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(url_ns));
            Ok(())
        }
        Some(ns) if ns == url_ns => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

impl World {
    /// An empty world with the built-in resources and default namespaces.
    pub fn new(history_limit: usize) -> Self {
        let mut w = Self {
            store: Store::new(history_limit),
            registry: Registry::default(),
            workload_writes: (0, 0),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let res = w.resource("", "namespaces");
            if let Some(res) = res {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                // Creating fixed, valid names into an empty store cannot fail.
                let _ = w.create(&res, &WriteOpts::for_version("v1"), None, obj);
            }
        }
        w
    }

    /// The resource `plural` of `group`.
    pub fn resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.registry.by_group_resource(group, plural)
    }

    /// 404 unless the namespace exists; 403 when creating in a terminating namespace.
    pub fn check_namespace_usable(&self, ns: &str, creating: bool) -> Result<(), ApiError> {
        let key = ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        let Some(obj) = self.store.get(&key) else {
            return Err(ApiError::not_found(
                crate::error::Subject {
                    group: "",
                    resource: "namespaces",
                },
                ns,
            ));
        };
        if creating && is_deleting(obj) {
            return Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// Creates an object (POST, or server-side apply of a missing object).
    pub fn create(
        &mut self,
        res: &ResourceInfo,
        opts: &WriteOpts,
        url_ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Written, ApiError> {
        check_type(res, &opts.version, &mut obj)?;
        check_namespace(res, url_ns, &mut obj)?;
        let now = now();
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(prefix) if !prefix.is_empty() => {
                    name = crate::objects::generate_name(prefix);
                }
                _ => {
                    return Err(ApiError::invalid(
                        &res.group,
                        &res.kind,
                        "",
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            }
        }
        let label_only = res.group.is_empty() && res.plural == "namespaces";
        if let Some(c) = validate_name(&name, label_only) {
            return Err(ApiError::invalid(&res.group, &res.kind, &name, vec![c]));
        }
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        if let Some(ns) = &ns {
            self.check_namespace_usable(ns, true)?;
        }
        if let Some(meta) = meta_mut(&mut obj) {
            meta.insert("name".into(), json!(name));
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("creationTimestamp".into(), json!(now));
            meta.insert("generation".into(), json!(1));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(f);
            }
            if !opts.managed_fields_done {
                meta.remove("managedFields");
            }
        }
        prepare_create(res, &mut obj);
        if is_crd(res) {
            crd_to_resource(&obj).map_err(|c| ApiError::invalid(CRD_GROUP, &res.kind, &name, c))?;
            obj["status"] = accepted_status(&obj, &now);
        }
        let mut warnings = admit(res, &opts.version, &mut obj, None, opts.field_validation)?;
        warnings.extend(self.admit_policies(res, opts, "CREATE", Some(&obj), None)?);
        let key = key_for(res, ns.as_deref(), &name);
        if self.store.get(&key).is_some() {
            return Err(ApiError::already_exists(res.subject(), &name));
        }
        if !opts.managed_fields_done {
            managed::record_update(
                res,
                &opts.version,
                None,
                &mut obj,
                &opts.manager,
                None,
                &now,
            );
        }
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                warnings,
            });
        }
        let stored = self.store.put(key, res.to_storage(obj));
        self.after_write(res, &stored, false);
        Ok(Written {
            object: res.present(stored, &opts.version),
            warnings,
        })
    }

    /// Replaces an object (PUT, and every patch after computing the new object).
    pub fn update(
        &mut self,
        res: &ResourceInfo,
        opts: &WriteOpts,
        key: &ObjKey,
        mut obj: Value,
    ) -> Result<Written, ApiError> {
        // Updates work on the object as seen through `res` in the request's version.
        let Some(old) = self.store.get(key).cloned() else {
            return Err(ApiError::not_found(res.subject(), &key.name));
        };
        let old = res.present(old, &opts.version);
        check_type(res, &opts.version, &mut obj)?;
        let url_ns = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
        check_namespace(res, url_ns, &mut obj)?;
        match meta_str(&obj, "name") {
            None | Some("") => {
                if let Some(m) = meta_mut(&mut obj) {
                    m.insert("name".into(), json!(key.name));
                }
            }
            Some(n) if n == key.name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    key.name
                )));
            }
        }
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or_default();
        match meta_str(&obj, "resourceVersion") {
            Some(rv) if !rv.is_empty() && rv != old_rv => {
                return Err(ApiError::stale(res.subject(), &key.name));
            }
            None | Some("") if !res.allows_unconditional_update() => {
                return Err(ApiError::invalid(
                    &res.group,
                    &res.kind,
                    &key.name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                ));
            }
            _ => {}
        }
        if opts.subresource.as_deref() == Some("status") {
            let mut merged = old.clone();
            match obj.get("status") {
                Some(s) => merged["status"] = s.clone(),
                None => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if let (Some(mf), Some(meta)) = (
                obj.pointer("/metadata/managedFields").cloned(),
                meta_mut(&mut merged),
            ) {
                meta.insert("managedFields".into(), mf);
            }
            obj = merged;
        } else if res.status {
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        self.check_finalizers(res, &old, &obj)?;
        if let (Some(new_meta), Some(old_meta)) = (meta_mut(&mut obj), old.get("metadata")) {
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match old_meta.get(f) {
                    Some(v) => new_meta.insert(f.into(), v.clone()),
                    None => new_meta.remove(f),
                };
            }
        }
        prepare_write(res, &mut obj);
        if is_crd(res) {
            crd_to_resource(&obj)
                .map_err(|c| ApiError::invalid(CRD_GROUP, &res.kind, &key.name, c))?;
        }
        let mut warnings = admit(
            res,
            &opts.version,
            &mut obj,
            Some(&old),
            opts.field_validation,
        )?;
        warnings.extend(self.admit_policies(res, opts, "UPDATE", Some(&obj), Some(&old))?);
        if spec_changed(res, &old, &obj) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            obj["metadata"]["generation"] = json!(generation + 1);
        }
        let now = now();
        if !opts.managed_fields_done {
            managed::record_update(
                res,
                &opts.version,
                Some(&old),
                &mut obj,
                &opts.manager,
                opts.subresource.as_deref(),
                &now,
            );
        }
        let deleting_done = is_deleting(&obj) && !has_pending_finalizers(&obj);
        if !deleting_done && same_ignoring_times(&old, &obj) {
            return Ok(Written {
                object: old,
                warnings,
            });
        }
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                warnings,
            });
        }
        if deleting_done {
            let removed = self.remove(res, key).unwrap_or(obj);
            return Ok(Written {
                object: res.present(removed, &opts.version),
                warnings,
            });
        }
        let stored = self.store.put(key.clone(), res.to_storage(obj));
        self.after_write(res, &stored, false);
        Ok(Written {
            object: res.present(stored, &opts.version),
            warnings,
        })
    }

    /// Runs the ValidatingAdmissionPolicies on a client's write (and checks that a policy
    /// being written compiles); the warnings to send.
    pub fn admit_policies(
        &self,
        res: &ResourceInfo,
        opts: &WriteOpts,
        operation: &str,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let Some(user) = &opts.user else {
            return Ok(Vec::new());
        };
        let obj = object.or(old).unwrap_or(&Value::Null);
        let name = meta_str(obj, "name").unwrap_or_default();
        if let Some(written) = object
            && policy::is_policy(&res.group, &res.plural)
        {
            let causes = policy::validate_policy(written);
            if !causes.is_empty() {
                return Err(ApiError::invalid(&res.group, &res.kind, name, causes));
            }
        }
        let namespace = if res.namespaced {
            meta_str(obj, "namespace").unwrap_or_default()
        } else {
            ""
        };
        let namespace_object = (!namespace.is_empty())
            .then(|| {
                self.store.get(&ObjKey {
                    group: String::new(),
                    resource: "namespaces".into(),
                    namespace: String::new(),
                    name: namespace.to_owned(),
                })
            })
            .flatten();
        let request = policy::Request {
            attrs: policy::Attributes {
                operation,
                group: &res.group,
                version: &opts.version,
                resource: &res.plural,
                subresource: opts.subresource.as_deref(),
                name,
                namespace,
                namespaced: res.namespaced,
                object,
                old,
                namespace_object,
            },
            kind: &res.kind,
            user,
            dry_run: opts.dry_run,
        };
        policy::admit(&self.store, &request)
    }

    fn check_finalizers(
        &self,
        res: &ResourceInfo,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        if !is_deleting(old) {
            return Ok(());
        }
        let before = finalizers(old);
        let added: Vec<String> = finalizers(new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        Err(ApiError::invalid(
            &res.group,
            &res.kind,
            meta_str(old, "name").unwrap_or_default(),
            vec![Cause {
                reason: "FieldValueForbidden".into(),
                message: format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                ),
                field: "metadata.finalizers".into(),
            }],
        ))
    }

    /// Removes an object for good and keeps the registry in step.
    pub fn remove(&mut self, res: &ResourceInfo, key: &ObjKey) -> Option<Value> {
        let removed = self.store.remove(key)?;
        self.after_write(res, &removed, true);
        Some(removed)
    }

    /// Serves, re-serves or stops serving a CRD's resource after it was written.
    fn after_write(&mut self, res: &ResourceInfo, obj: &Value, removed: bool) {
        if matches!(
            (res.group.as_str(), res.plural.as_str()),
            ("", "pods") | ("apps", "replicasets" | "deployments")
        ) {
            self.workload_writes.0 += 1;
        }
        if !is_crd(res) {
            return;
        }
        let name = meta_str(obj, "name").unwrap_or_default().to_string();
        if removed {
            if let Some(served) = self.registry.remove_custom(&name) {
                let keys: Vec<ObjKey> = self
                    .store
                    .list(&served.group, &served.plural, None)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    self.store.remove(&k);
                }
            }
        } else if let Ok(served) = crd_to_resource(obj) {
            self.registry.set_custom(&name, served);
        }
    }
}

impl WriteOpts {
    /// Options for a plain write in `version`.
    pub fn for_version(version: &str) -> Self {
        Self {
            version: version.to_string(),
            manager: "egress-apiserver".into(),
            ..Self::default()
        }
    }
}

/// Equal apart from `resourceVersion` and the timestamps of `managedFields` entries.
fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = meta_mut(&mut v) {
            meta.remove("resourceVersion");
            if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
                for e in entries {
                    if let Some(m) = e.as_object_mut() {
                        m.remove("time");
                    }
                }
            }
        }
        v
    };
    norm(a) == norm(b)
}
