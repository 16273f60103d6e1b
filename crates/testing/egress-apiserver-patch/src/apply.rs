//! Server-side apply (structured-merge-diff's `Updater.Apply` as kube-apiserver wraps it):
//! merge, ownership of the applied fields, pruning of fields the manager stopped applying,
//! conflicts with other managers, and the `before-first-apply` takeover of untracked objects.

use crate::error::{ApplyError, FieldConflict};
use crate::fieldset::FieldSet;
use crate::managed::{self, APPLY, Entry, UPDATE};
use crate::merge::merge;
use crate::path::{PathElement, path_to_string};
use crate::types::TypeInfo;
use crate::walk::{compare, field_set, remove_path};
use serde_json::{Map, Value, json};

/// Manager that takes ownership of everything in an object applied to for the first time
/// while it has no managedFields (as the real server does).
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Server-side apply with explicit type information; see [`crate::apply`].
pub fn apply_typed(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    now: &str,
    types: &TypeInfo,
) -> Result<Value, ApplyError> {
    validate(live, applied, manager)?;
    let sub = subresource.unwrap_or_default();
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let untracked = managed::untracked();
    let mut entries = live.map(managed::decode).transpose()?.unwrap_or_default();
    let live_obj = live.map_or_else(|| json!({}), managed::without_managed_fields);

    if live.is_some() && entries.is_empty() {
        let set = field_set(&live_obj, types, false)?.difference(&untracked);
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_owned(),
            operation: UPDATE.to_owned(),
            subresource: String::new(),
            api_version: api_version.clone(),
            time: Some(now.to_owned()),
            set,
        });
    }

    let config = reset_config(applied, sub, types);
    let new_set = field_set(&config, types, true)?.difference(&untracked);
    let merged = merge(&live_obj, &config, types)?;

    let existing = entries.iter().position(|e| e.is(manager, APPLY, sub));
    let me = match existing {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.to_owned(),
                operation: APPLY.to_owned(),
                subresource: sub.to_owned(),
                api_version: api_version.clone(),
                time: None,
                set: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    let last_set = std::mem::replace(&mut entries[me].set, new_set.clone());
    entries[me].api_version = api_version;

    let mut result = prune(merged, &entries, &last_set, types);
    managed::drop_empty_metadata(&mut result);

    let cmp = compare(&live_obj, &result, types);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    let mut taken = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if i == me {
            continue;
        }
        let overlap = entry.set.intersection(&changed);
        if overlap.is_empty() {
            continue;
        }
        let message = format!("conflict with {}", entry.describe());
        for path in overlap.members() {
            conflicts.push(FieldConflict {
                manager: entry.manager.clone(),
                field: path_to_string(&path),
                message: message.clone(),
            });
        }
        taken.push((i, overlap));
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| {
            a.message
                .cmp(&b.message)
                .then_with(|| a.field.cmp(&b.field))
        });
        return Err(ApplyError::Conflict { conflicts });
    }
    for (i, overlap) in taken {
        entries[i].set = entries[i].set.difference(&overlap);
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        if i != me {
            entry.set = entry.set.difference(&cmp.removed);
        }
    }

    let object_changed = live.is_none() || result != live_obj;
    if object_changed || existing.is_none() || last_set != new_set {
        entries[me].time = Some(now.to_owned());
    }
    managed::encode(&mut result, entries);
    Ok(result)
}

fn validate(live: Option<&Value>, applied: &Value, manager: &str) -> Result<(), ApplyError> {
    if manager.is_empty() {
        return Err(ApplyError::Invalid(
            "fieldManager is required for apply requests".into(),
        ));
    }
    let Value::Object(obj) = applied else {
        return Err(ApplyError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    };
    for field in ["apiVersion", "kind"] {
        if obj
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApplyError::Invalid(format!("{field} must be set")));
        }
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    if let Some(live) = live {
        for (field, what) in [("kind", "kind"), ("apiVersion", "version")] {
            let theirs = live.get(field).and_then(Value::as_str).unwrap_or_default();
            let ours = obj.get(field).and_then(Value::as_str).unwrap_or_default();
            if !theirs.is_empty() && theirs != ours {
                return Err(ApplyError::Invalid(format!(
                    "incorrect {what} specified in apply patch: specified {ours}, expected {theirs}"
                )));
            }
        }
    }
    Ok(())
}

/// The part of the configuration this endpoint may change: only `status` for the status
/// subresource; everything but `status` for the main resource of a kind with a status
/// subresource.
fn reset_config(applied: &Value, sub: &str, types: &TypeInfo) -> Value {
    let Value::Object(obj) = applied else {
        return applied.clone();
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let keep = match (sub, key.as_str()) {
            (_, "apiVersion" | "kind") => true,
            ("status", "metadata") => {
                let mut ident = Map::new();
                for field in ["name", "namespace"] {
                    if let Some(v) = value.get(field) {
                        ident.insert(field.to_owned(), v.clone());
                    }
                }
                out.insert(key.clone(), Value::Object(ident));
                false
            }
            ("status", field) => field == "status",
            (_, "status") => !types.status_subresource(),
            _ => true,
        };
        if keep {
            out.insert(key.clone(), value.clone());
        }
    }
    Value::Object(out)
}

/// Removes fields the manager applied before but not now, unless someone still owns them.
fn prune(mut merged: Value, entries: &[Entry], last_set: &FieldSet, types: &TypeInfo) -> Value {
    if last_set.is_empty() {
        return merged;
    }
    let owned = entries
        .iter()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.set));
    for path in last_set.members() {
        // Named fields whose children are still owned stay (SMD's EnsureNamedFieldsAreMembers);
        // a list item goes as a whole once nobody owns the item itself.
        let keep = match path.last() {
            Some(PathElement::Field(_)) => owned.has_prefix(&path),
            _ => owned.has(&path),
        };
        if !keep {
            remove_path(&mut merged, &path, types);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.to_owned())
    }

    #[test]
    fn reset_config_keeps_only_what_the_endpoint_may_change() {
        let cfg = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}},
            "spec": {"x": 1}, "status": {"y": 2}});
        let pod = TypeInfo::for_object(&cfg);
        let status = reset_config(&cfg, "status", &pod);
        assert_eq!(
            status,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "status": {"y": 2}})
        );
        let main = reset_config(&cfg, "", &pod);
        assert!(main.get("status").is_none());
        assert_eq!(main["spec"], json!({"x": 1}));
        let untyped = reset_config(&cfg, "", &TypeInfo::untyped());
        assert_eq!(untyped, cfg);
    }

    #[test]
    fn prune_keeps_fields_someone_still_owns() {
        let types = TypeInfo::untyped();
        let merged = json!({"spec": {"a": 1, "b": 2, "c": {"d": 3}}});
        let mut last = FieldSet::new();
        last.insert(&[f("spec"), f("a")]);
        last.insert(&[f("spec"), f("b")]);
        last.insert(&[f("spec"), f("c")]);
        let mut other = FieldSet::new();
        other.insert(&[f("spec"), f("b")]);
        other.insert(&[f("spec"), f("c"), f("d")]);
        let entries = vec![Entry {
            manager: "other".into(),
            operation: UPDATE.into(),
            subresource: String::new(),
            api_version: "v1".into(),
            time: None,
            set: other,
        }];
        let out = prune(merged, &entries, &last, &types);
        assert_eq!(out, json!({"spec": {"b": 2, "c": {"d": 3}}}));
    }
}
