//! Ownership bookkeeping for writes that are not apply (create, update, JSON/merge/strategic
//! patch): changed fields move to the writing manager's `Update` entry without conflicts.

use crate::error::PatchError;
use crate::managed::{self, Entry, UPDATE};
use crate::types::TypeInfo;
use crate::walk::compare;
use serde_json::{Value, json};

/// [`crate::record_update`] with explicit type information.
pub fn record_update_typed(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
    types: &TypeInfo,
) -> Result<(), PatchError> {
    if !new.is_object() {
        return Err(PatchError::NotAnObject {
            what: "new object".into(),
        });
    }
    if manager.is_empty() {
        return Err(PatchError::MissingManager);
    }
    let sub = subresource.unwrap_or_default();
    managed::drop_empty_metadata(new);
    // A client may rewrite managedFields on the main resource; otherwise keep the stored ones
    // (clients that do not know the field must not wipe it).
    let from_client = match managed::decode(new) {
        Ok(entries) if sub.is_empty() && !entries.is_empty() => Some(entries),
        _ => None,
    };
    let mut entries = match from_client {
        Some(entries) => entries,
        None => old
            .map(managed::decode)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default(),
    };
    if old.is_some() && entries.is_empty() {
        // The real server does not start tracking an existing object on update.
        managed::encode(new, Vec::new());
        return Ok(());
    }
    let old_obj = old.map_or_else(|| json!({}), managed::without_managed_fields);
    let new_obj = managed::without_managed_fields(new);
    let untracked = managed::untracked();
    let cmp = compare(&old_obj, &new_obj, types);
    let changed = cmp.modified.union(&cmp.added).difference(&untracked);
    for entry in &mut entries {
        entry.set = entry.set.difference(&changed).difference(&cmp.removed);
    }
    if !changed.is_empty() {
        let api_version = new
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match entries.iter_mut().find(|e| e.is(manager, UPDATE, sub)) {
            Some(entry) => {
                entry.set = entry.set.union(&changed);
                entry.time = Some(now.to_owned());
                entry.api_version = api_version;
            }
            None => entries.push(Entry {
                manager: manager.to_owned(),
                operation: UPDATE.to_owned(),
                subresource: sub.to_owned(),
                api_version,
                time: Some(now.to_owned()),
                set: changed,
            }),
        }
    }
    managed::encode(new, entries);
    Ok(())
}
