//! Admission of custom resources on write: unknown-field handling per `fieldValidation`
//! (Strict → 400, Warn → `Warning` headers), structural defaulting, and schema/CEL validation
//! reported as a 422 `Invalid` Status with field paths.

use serde_json::Value;

use crate::error::ApiError;
use crate::objects::{meta_str, prune_metadata};
use crate::query::FieldValidation;
use crate::resource::ResourceInfo;

/// Prunes, defaults and validates `obj`; returns the warnings to send.
pub fn admit(
    res: &ResourceInfo,
    version: &str,
    obj: &mut Value,
    old: Option<&Value>,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if !res.custom {
        return Ok(Vec::new());
    }
    let mut unknown = prune_metadata(obj);
    let schema = res.version(version).and_then(|v| v.schema.clone());
    if let Some(schema) = &schema {
        unknown.extend(schema.prune(obj));
    }
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        let listed: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match validation {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    listed.join(", ")
                )));
            }
            FieldValidation::Warn => warnings = listed,
            FieldValidation::Ignore => {}
        }
    }
    if let Some(schema) = &schema {
        schema.apply_defaults(obj);
        let causes = schema.validate(obj, old);
        if !causes.is_empty() {
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            return Err(ApiError::invalid(&res.group, &res.kind, &name, causes));
        }
    }
    Ok(warnings)
}
