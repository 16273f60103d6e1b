//! Strategic merge patch: lists. Keyed lists merge by their patch merge key (with `$patch:
//! delete|replace` items), primitive lists with merge strategy are unions, other lists are
//! replaced; the result order follows the patch (or `$setElementOrder`) and the server.

use crate::error::PatchError;
use crate::keys::{ITEM, SmpList};
use crate::strategic::{DIRECTIVE, Smp};
use serde_json::{Map, Value};

impl Smp<'_> {
    /// Merges the patch list for `field` into the original list.
    pub(crate) fn merge_list(
        &mut self,
        field: &str,
        original: Vec<Value>,
        patch: Vec<Value>,
    ) -> Result<Vec<Value>, PatchError> {
        let strategy = self.list_strategy(field);
        if strategy == SmpList::Replace {
            return Ok(patch);
        }
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let maps = original.iter().chain(&patch).any(Value::is_object);
        let merged = if !maps {
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for item in original.iter().chain(&patch) {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            merged
        } else {
            let SmpList::MergeKey(key) = &strategy else {
                return Err(self.invalid(field, "cannot merge lists of maps without merge key"));
            };
            let key = key.clone();
            match self.special_elements(field, original.clone(), patch.clone(), &key)? {
                Special::Replace(items) => return Ok(items),
                Special::Merge(base, rest) => self.merge_keyed(field, base, rest, &key)?,
            }
        };
        self.order_by_list(field, merged, &patch, &original, &strategy)
    }

    fn special_elements(
        &self,
        field: &str,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
    ) -> Result<Special, PatchError> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Some(directive) = item.get(DIRECTIVE) else {
                plain.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let value = item.get(key).ok_or_else(|| PatchError::MissingMergeKey {
                        path: self.here(field),
                        key: key.to_owned(),
                    })?;
                    original.retain(|o| o.get(key) != Some(value));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(
                        self.invalid(field, "merging lists cannot yet be specified in the patch")
                    );
                }
                _ => return Err(self.invalid(field, format!("unknown patch type {directive}"))),
            }
        }
        Ok(if replace {
            Special::Replace(plain)
        } else {
            Special::Merge(original, plain)
        })
    }

    fn merge_keyed(
        &mut self,
        field: &str,
        mut merged: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
    ) -> Result<Vec<Value>, PatchError> {
        self.schema_path.push(field.to_owned());
        self.schema_path.push(ITEM.to_owned());
        let result = (|| {
            for item in patch {
                let Value::Object(item) = item else {
                    return Err(self.invalid("", "list items must all be maps"));
                };
                let value = item
                    .get(key)
                    .cloned()
                    .ok_or_else(|| PatchError::MissingMergeKey {
                        path: self.here(""),
                        key: key.to_owned(),
                    })?;
                match merged.iter().position(|o| o.get(key) == Some(&value)) {
                    Some(i) => {
                        let base = match std::mem::take(&mut merged[i]) {
                            Value::Object(o) => o,
                            _ => Map::new(),
                        };
                        merged[i] = Value::Object(self.merge_map(base, item)?);
                    }
                    None => merged.push(Value::Object(self.merge_map(Map::new(), item)?)),
                }
            }
            Ok(merged)
        })();
        self.schema_path.pop();
        self.schema_path.pop();
        result
    }

    /// The patch list must name its items in the same relative order as `$setElementOrder`.
    pub(crate) fn check_order_list(
        &mut self,
        field: &str,
        patch: &[Value],
        order: &[Value],
    ) -> Result<(), PatchError> {
        let key = match self.list_strategy(field) {
            SmpList::MergeKey(key) => Some(key),
            _ => None,
        };
        let id = |item: &Value| match &key {
            Some(key) if item.is_object() => item.get(key.as_str()).cloned(),
            _ => Some(item.clone()),
        };
        let order_ids: Vec<Option<Value>> = order.iter().map(id).collect();
        let mut last = 0;
        for item in patch.iter().filter(|item| item.get(DIRECTIVE).is_none()) {
            let wanted = id(item);
            match order_ids.iter().skip(last).position(|o| *o == wanted) {
                Some(pos) => last += pos + 1,
                None => {
                    return Err(self.invalid(
                        field,
                        "the patch list and the $setElementOrder list do not match",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Puts items named in `order` (patch list or `$setElementOrder`) in that order and
    /// interleaves the server-only items by their original positions.
    pub(crate) fn order_by_list(
        &self,
        field: &str,
        merged: Vec<Value>,
        order: &[Value],
        server_order: &[Value],
        strategy: &SmpList,
    ) -> Result<Vec<Value>, PatchError> {
        let key = match strategy {
            SmpList::MergeKey(key) if merged.iter().any(Value::is_object) => Some(key.as_str()),
            SmpList::Replace => return Ok(merged),
            _ => None,
        };
        if let Some(key) = key
            && let Some(bad) = order
                .iter()
                .find(|o| o.get(key).is_none() && o.get(DIRECTIVE).is_none())
        {
            return Err(self.invalid(
                field,
                format!("order list item {bad} has no merge key {key:?}"),
            ));
        }
        let index = |list: &[Value], item: &Value| -> Option<usize> {
            list.iter().position(|o| match key {
                Some(key) => o.get(key).is_some() && o.get(key) == item.get(key),
                None => o == item,
            })
        };
        let (mut ordered, mut server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| index(order, item).is_some());
        ordered.sort_by_key(|item| index(order, item));
        server_only.sort_by_key(|item| index(server_order, item).unwrap_or(usize::MAX));
        let mut out = Vec::with_capacity(ordered.len() + server_only.len());
        let (mut left, mut right) = (
            server_only.into_iter().peekable(),
            ordered.into_iter().peekable(),
        );
        loop {
            let take_left = match (left.peek(), right.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(l), Some(r)) => match (index(server_order, l), index(server_order, r)) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                },
            };
            let next = if take_left { left.next() } else { right.next() };
            out.extend(next);
        }
        Ok(out)
    }
}

enum Special {
    /// `$patch: replace` item present: the list is exactly these items.
    Replace(Vec<Value>),
    /// Original (after `$patch: delete` items) and the remaining patch items.
    Merge(Vec<Value>, Vec<Value>),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::types::TypeInfo;
    use serde_json::json;

    fn smp(types: &TypeInfo) -> Smp<'_> {
        Smp {
            types,
            schema_path: Vec::new(),
        }
    }

    #[test]
    fn server_only_items_keep_their_place_between_patch_items() {
        let types = TypeInfo::untyped();
        let s = smp(&types);
        let key = SmpList::MergeKey("name".into());
        let server = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let merged = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let order = vec![json!({"name": "c"}), json!({"name": "a"})];
        let out = s.order_by_list("l", merged, &order, &server, &key).unwrap();
        let names: Vec<&str> = out.iter().map(|i| i["name"].as_str().unwrap()).collect();
        // As mergeSortedSlice: "b" is before "c" on the server, so it goes first.
        assert_eq!(names, ["b", "c", "a"]);
    }

    #[test]
    fn order_lists_need_the_merge_key() {
        let types = TypeInfo::untyped();
        let s = smp(&types);
        let key = SmpList::MergeKey("name".into());
        let err = s
            .order_by_list(
                "l",
                vec![json!({"name": "a"})],
                &[json!({"x": 1})],
                &[],
                &key,
            )
            .unwrap_err();
        assert!(err.to_string().contains("no merge key"), "{err}");
    }

    #[test]
    fn maps_in_a_primitive_merge_list_are_rejected() {
        let types = TypeInfo::untyped();
        let mut s = smp(&types);
        s.schema_path.push("metadata".into());
        let err = s
            .merge_list("finalizers", vec![json!("a")], vec![json!({"x": 1})])
            .unwrap_err();
        assert!(err.to_string().contains("without merge key"), "{err}");
    }
}
