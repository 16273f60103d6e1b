//! The seam between the server and CRD admission (structural defaulting, pruning, OpenAPI v3 and
//! CEL validation, done by `egress-schema`). The server only sees [`ObjectSchema`]; [`compile`]
//! builds one per CRD version, once, when the CRD is registered.

use std::sync::Arc;

use egress_schema::SchemaValidator;
use serde_json::Value;

use crate::error::Cause;

/// Admission of custom resources against one CRD version's `openAPIV3Schema`.
pub trait ObjectSchema: Send + Sync + std::fmt::Debug {
    /// Applies schema defaults in place (on create and update).
    fn apply_defaults(&self, obj: &mut Value);
    /// Drops fields unknown to the schema; returns their paths (`spec.foo`).
    fn prune(&self, obj: &mut Value) -> Vec<String>;
    /// Validates the object (with `old` for `oldSelf` transition rules).
    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause>;
}

impl ObjectSchema for SchemaValidator {
    fn apply_defaults(&self, obj: &mut Value) {
        SchemaValidator::apply_defaults(self, obj);
    }

    fn prune(&self, obj: &mut Value) -> Vec<String> {
        SchemaValidator::prune(self, obj)
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        SchemaValidator::validate(self, obj, old)
            .into_iter()
            .map(|e| Cause {
                reason: e.reason().to_string(),
                message: e.message(),
                field: e.field.clone(),
            })
            .collect()
    }
}

/// Compiles a CRD version's `openAPIV3Schema`; the error text becomes a 422 cause.
pub fn compile(open_api_v3_schema: &Value) -> Result<Arc<dyn ObjectSchema>, String> {
    SchemaValidator::new(open_api_v3_schema)
        .map(|v| Arc::new(v) as Arc<dyn ObjectSchema>)
        .map_err(|e| e.to_string())
}
