//! `SchemaValidator`: one compiled CRD version schema, and the admission steps run with it
//! (prune, default, validate) in the API server's order.

use std::sync::Mutex;

use kube_cel::{CompiledSchema, ValidationError, Validator, compile_schema};
use serde_json::Value;

use crate::error::{FieldError, FieldErrorKind, SchemaError};
use crate::openapi::{self, Patterns};
use crate::prune;

/// A compiled `openAPIV3Schema` of one CRD version. Compile once, use for every object.
pub struct SchemaValidator {
    schema: Value,
    patterns: Patterns,
    cel: CompiledSchema,
    // The CEL context is `Send` but not `Sync`; a lock keeps the validator shareable.
    evaluator: Mutex<Validator>,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator").finish_non_exhaustive()
    }
}

impl SchemaValidator {
    /// Compiles the schema: every `pattern` and every CEL rule must compile.
    pub fn new(open_api_v3_schema: &Value) -> Result<Self, SchemaError> {
        let mut patterns = Patterns::new();
        openapi::compile_patterns(open_api_v3_schema, "", &mut patterns)?;
        let cel = compile_schema(open_api_v3_schema);
        let mut problems = Vec::new();
        collect_cel_errors(&cel, &mut problems);
        if !problems.is_empty() {
            return Err(SchemaError::CelCompilation(problems.join("; ")));
        }
        Ok(Self {
            schema: open_api_v3_schema.clone(),
            patterns,
            cel,
            evaluator: Mutex::new(Validator::new()),
        })
    }

    /// Drops fields the schema does not declare; returns their paths (e.g. `spec.foo`), which
    /// the server reports as errors with `fieldValidation=Strict` and as warnings otherwise.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune::prune_root(&self.schema, obj)
    }

    /// Fills in schema defaults, as the server does on create, update and read.
    pub fn apply_defaults(&self, obj: &mut Value) {
        *obj = kube_cel::apply_defaults(&self.schema, obj);
    }

    /// Validates a pruned and defaulted object: OpenAPI rules first, then CEL rules (CEL is
    /// skipped when a value has the wrong type, as on the server). With `old`, transition
    /// rules (`oldSelf`) run too.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        openapi::check(&self.schema, obj, "", &self.patterns, &mut errs);
        if errs.iter().any(|e| e.kind == FieldErrorKind::TypeInvalid) {
            return errs;
        }
        let result = match self.evaluator.lock() {
            Ok(v) => v.validate_compiled(&self.cel, obj, old),
            Err(poisoned) => poisoned.into_inner().validate_compiled(&self.cel, obj, old),
        };
        if let Err(cel_errors) = result {
            errs.extend(cel_errors.into_vec().into_iter().map(|e| cel_error(e, obj)));
        }
        errs
    }

    /// Prunes, defaults and validates in the server's order; returns the pruned paths and the
    /// problems found.
    pub fn admit(&self, obj: &mut Value, old: Option<&Value>) -> (Vec<String>, Vec<FieldError>) {
        let pruned = self.prune(obj);
        self.apply_defaults(obj);
        let errors = self.validate(obj, old);
        (pruned, errors)
    }
}

fn collect_cel_errors(node: &CompiledSchema, out: &mut Vec<String>) {
    out.extend(node.compilation_errors().iter().map(|e| e.to_string()));
    for child in node.properties.values() {
        collect_cel_errors(child, out);
    }
    let nested = node.items.iter().chain(node.additional_properties.iter());
    for child in nested {
        collect_cel_errors(child, out);
    }
    for child in node.all_of.iter().chain(&node.any_of).chain(&node.one_of) {
        collect_cel_errors(child, out);
    }
}

/// Converts a CEL failure into the server's shape: `field: Invalid value: "object": message`.
fn cel_error(e: ValidationError, obj: &Value) -> FieldError {
    let kind = match e.reason.as_deref() {
        Some("FieldValueRequired") => FieldErrorKind::Required,
        Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
        Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
        _ => FieldErrorKind::Invalid,
    };
    let value = lookup(obj, &e.field_path).map(|v| match v {
        Value::Object(_) => Value::String("object".into()),
        Value::Array(_) => Value::String("array".into()),
        other => other.clone(),
    });
    FieldError::new(e.field_path, kind, value, e.message)
}

/// Resolves a field path like `spec.items[2].name` against `obj`.
fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            let key = idx.trim_end_matches(']');
            cur = match key.parse::<usize>() {
                Ok(i) if cur.is_array() => cur.get(i)?,
                _ => cur.get(key)?,
            };
        }
    }
    Some(cur)
}
