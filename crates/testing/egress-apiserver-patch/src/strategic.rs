//! Strategic merge patch (k8s.io/apimachinery `strategicpatch`): maps and the map-level
//! directives `$patch`, `$retainKeys`, `$setElementOrder/<f>` and
//! `$deleteFromPrimitiveList/<f>`. Lists live in `strategic_list`.

use crate::error::PatchError;
use crate::keys::SmpList;
use crate::types::TypeInfo;
use serde_json::{Map, Value};

pub(crate) const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// [`crate::strategic_merge`] with explicit type information.
pub fn strategic_merge_typed(
    live: &Value,
    patch: &Value,
    types: &TypeInfo,
) -> Result<Value, PatchError> {
    let Value::Object(original) = live else {
        return Err(PatchError::NotAnObject {
            what: "live object".into(),
        });
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject {
            what: "patch".into(),
        });
    };
    let mut smp = Smp {
        types,
        schema_path: Vec::new(),
    };
    Ok(Value::Object(
        smp.merge_map(original.clone(), patch.clone())?,
    ))
}

pub(crate) struct Smp<'t> {
    pub(crate) types: &'t TypeInfo,
    pub(crate) schema_path: Vec<String>,
}

impl Smp<'_> {
    /// Dotted path of the current position for error messages.
    pub(crate) fn here(&self, field: &str) -> String {
        let mut parts: Vec<&str> = self.schema_path.iter().map(String::as_str).collect();
        if !field.is_empty() {
            parts.push(field);
        }
        format!(".{}", parts.join("."))
    }

    pub(crate) fn invalid(&self, field: &str, message: impl Into<String>) -> PatchError {
        PatchError::InvalidDirective {
            path: self.here(field),
            message: message.into(),
        }
    }

    pub(crate) fn list_strategy(&mut self, field: &str) -> SmpList {
        self.schema_path.push(field.to_owned());
        let rule = self.types.list_rule(&self.schema_path).smp;
        self.schema_path.pop();
        rule
    }

    pub(crate) fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.remove(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => return self.merge_map(Map::new(), patch),
                Some("delete") => return Ok(Map::new()),
                Some("merge") => {}
                _ => {
                    return Err(self.invalid(DIRECTIVE, format!("unknown patch type {directive}")));
                }
            }
        }
        if let Some(retain) = patch.remove(RETAIN_KEYS) {
            let keys = string_list(&retain)
                .ok_or_else(|| self.invalid(RETAIN_KEYS, "must be a list of strings"))?;
            let stray = patch.iter().find(|(key, value)| {
                !value.is_null()
                    && !key.starts_with(SET_ELEMENT_ORDER)
                    && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                    && !keys.iter().any(|k| k == *key)
            });
            if let Some((key, _)) = stray {
                return Err(self.invalid(
                    RETAIN_KEYS,
                    format!("patch sets {key:?} which is not in the $retainKeys list"),
                ));
            }
            original.retain(|key, _| keys.iter().any(|k| k == key));
        }
        let order_keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for key in order_keys {
            let order = patch.remove(&key).unwrap_or_default();
            let field = &key[SET_ELEMENT_ORDER.len()..];
            let Value::Array(order) = order else {
                return Err(self.invalid(&key, "must be a list"));
            };
            let original_list = match original.get(field) {
                Some(Value::Array(list)) => Some(list.clone()),
                _ => None,
            };
            let patch_list = match patch.remove(field) {
                None => None,
                Some(Value::Array(list)) => Some(list),
                Some(_) => {
                    return Err(self.invalid(field, "must be a list to use $setElementOrder"));
                }
            };
            if let Some(p) = &patch_list {
                self.check_order_list(field, p, &order)?;
            }
            let merged = match (&original_list, patch_list) {
                (Some(o), None) => o.clone(),
                (o, Some(p)) => self.merge_list(field, o.clone().unwrap_or_default(), p)?,
                (None, None) => continue,
            };
            let strategy = self.list_strategy(field);
            let ordered = self.order_by_list(
                field,
                merged,
                &order,
                &original_list.unwrap_or_default(),
                &strategy,
            )?;
            original.insert(field.to_owned(), Value::Array(ordered));
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                let Value::Array(remove) = value else {
                    return Err(self.invalid(&key, "must be a list"));
                };
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    list.retain(|item| !remove.contains(item));
                }
                continue;
            }
            if key.starts_with('$') {
                return Err(self.invalid(&key, "unknown directive"));
            }
            if value.is_null() {
                original.remove(&key);
                continue;
            }
            let merged = match value {
                Value::Object(p) => {
                    let base = match original.remove(&key) {
                        Some(Value::Object(o)) => o,
                        _ => Map::new(),
                    };
                    self.schema_path.push(key.clone());
                    let merged = self.merge_map(base, p);
                    self.schema_path.pop();
                    Value::Object(merged?)
                }
                Value::Array(p) => {
                    let base = match original.remove(&key) {
                        Some(Value::Array(o)) => o,
                        _ => Vec::new(),
                    };
                    Value::Array(self.merge_list(&key, base, p)?)
                }
                scalar => scalar,
            };
            original.insert(key, merged);
        }
        Ok(original)
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}
