//! ValidatingAdmissionPolicies (`admissionregistration.k8s.io/v1`) evaluated for real on every
//! write an API client makes (internal writes such as garbage collection are not admitted):
//! each binding whose policy's `matchConstraints` and own `matchResources` select the request
//! runs the policy's `matchConditions`, `variables` and `validations` in CEL (`cel`), with
//! `failurePolicy`, `messageExpression`, `reason` and the binding's `validationActions`
//! (`Deny` → the real server's error, `Warn` → a `Warning` header, `Audit` → nothing: there is
//! no audit log). `params` is always null: policies with a `paramKind` fail (by their
//! failure policy) with a message saying so.

mod cel;
mod matching;

use serde_json::{Value, json};

use self::cel::{Bindings, compile};
pub use self::matching::Attributes;
use crate::error::{ApiError, Cause};
use crate::identity::UserInfo;
use crate::objects::{meta_str, new_uid};
use crate::store::Store;

/// The group of the policy kinds.
pub const GROUP: &str = "admissionregistration.k8s.io";
const POLICIES: &str = "validatingadmissionpolicies";
const BINDINGS: &str = "validatingadmissionpolicybindings";
/// Longest message a `messageExpression` may produce (the real server's limit).
const MAX_MESSAGE: usize = 5 * 1024;

/// One write to admit.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// What is written.
    pub attrs: Attributes<'a>,
    /// Kind of the object.
    pub kind: &'a str,
    /// Who writes.
    pub user: &'a UserInfo,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// One validation that did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    message: String,
    reason: String,
}

/// The `request` variable (the admission request the real server converts).
fn request_value(r: &Request<'_>) -> Value {
    let a = &r.attrs;
    let mut user = json!({"username": r.user.username, "uid": r.user.uid, "groups": r.user.groups});
    if !r.user.extra.is_empty() {
        user["extra"] = json!(r.user.extra);
    }
    let kind = json!({"group": a.group, "version": a.version, "kind": r.kind});
    let resource = json!({"group": a.group, "version": a.version, "resource": a.resource});
    json!({
        "uid": new_uid(),
        "kind": kind, "resource": resource, "subResource": a.subresource.unwrap_or_default(),
        "requestKind": kind, "requestResource": resource,
        "requestSubResource": a.subresource.unwrap_or_default(),
        "name": a.name, "namespace": a.namespace, "operation": a.operation,
        "userInfo": user, "dryRun": r.dry_run,
    })
}

/// Runs every binding's policy against `r`: the warnings to send, or the denial.
pub fn admit(store: &Store, r: &Request<'_>) -> Result<Vec<String>, ApiError> {
    let mut bindings: Vec<&Value> = store.list(GROUP, BINDINGS, None).map(|(_, b)| b).collect();
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    bindings.sort_by_key(|b| meta_str(b, "name").unwrap_or_default().to_owned());
    let request = request_value(r);
    let mut warnings = Vec::new();
    for binding in bindings {
        let spec = &binding["spec"];
        let Some(policy) = spec["policyName"].as_str().and_then(|name| {
            store
                .list(GROUP, POLICIES, None)
                .find(|(k, _)| k.name == name)
                .map(|(_, p)| p)
        }) else {
            // A binding to a policy that does not exist is ignored, as on the real server.
            continue;
        };
        let (policy_name, binding_name) = (
            meta_str(policy, "name").unwrap_or_default(),
            meta_str(binding, "name").unwrap_or_default(),
        );
        let failures = evaluate(&policy["spec"], spec, r, &request);
        let actions: Vec<&str> = spec["validationActions"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for f in failures {
            if actions.contains(&"Warn") {
                warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {}",
                    f.message
                ));
            }
            if actions.contains(&"Deny") {
                return Err(denial(r, policy_name, binding_name, &f));
            }
        }
    }
    Ok(warnings)
}

/// The failures of one policy for the request (none when it does not apply).
fn evaluate(policy: &Value, binding: &Value, r: &Request<'_>, request: &Value) -> Vec<Failure> {
    let fail = policy["failurePolicy"].as_str() != Some("Ignore");
    let on_error = |message: String| -> Vec<Failure> {
        if fail {
            vec![Failure {
                message,
                reason: "Invalid".into(),
            }]
        } else {
            Vec::new()
        }
    };
    let selected = matching::matches(&policy["matchConstraints"], &r.attrs, true).and_then(|m| {
        if !m || binding["matchResources"].is_null() {
            return Ok(m);
        }
        matching::matches(&binding["matchResources"], &r.attrs, false)
    });
    match selected {
        Ok(true) => {}
        Ok(false) => return Vec::new(),
        Err(e) => return on_error(e),
    }
    if !policy["paramKind"].is_null() {
        return on_error("policies with paramKind are not supported by egress-apiserver".into());
    }
    let null = Value::Null;
    let mut ctx = Bindings::new(
        r.attrs.object.unwrap_or(&null),
        r.attrs.old.unwrap_or(&null),
        request,
        r.attrs.namespace_object.unwrap_or(&null),
    );
    for mc in list(&policy["matchConditions"]) {
        let name = mc["name"].as_str().unwrap_or_default();
        let expr = mc["expression"].as_str().unwrap_or_default();
        match compile(expr).and_then(|e| ctx.eval_bool(&e)) {
            Ok(true) => {}
            Ok(false) => return Vec::new(),
            Err(e) => return on_error(format!("failed to evaluate matchCondition '{name}': {e}")),
        }
    }
    for v in list(&policy["variables"]) {
        let value =
            compile(v["expression"].as_str().unwrap_or_default()).and_then(|e| ctx.eval(&e));
        if let (Ok(value), Some(name)) = (value, v["name"].as_str()) {
            ctx.set_variable(name, value);
        }
    }
    let mut failures = Vec::new();
    for v in list(&policy["validations"]) {
        let source = v["expression"].as_str().unwrap_or_default().trim();
        match compile(source).and_then(|e| ctx.eval_bool(&e)) {
            Ok(true) => {}
            Ok(false) => failures.push(Failure {
                message: message(v, &ctx, source),
                reason: v["reason"].as_str().unwrap_or("Invalid").to_owned(),
            }),
            Err(e) => failures.extend(on_error(format!(
                "expression '{source}' resulted in error: {e}"
            ))),
        }
    }
    failures
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// A failed validation's message: `messageExpression` if it gives one line of text, else
/// `message`, else the expression.
fn message(validation: &Value, ctx: &Bindings, source: &str) -> String {
    let evaluated = validation["messageExpression"]
        .as_str()
        .and_then(|src| compile(src).and_then(|e| ctx.eval(&e)).ok())
        .and_then(|v| match v {
            kube_cel::cel::Value::String(s) => Some(s.trim().to_owned()),
            _ => None,
        })
        .filter(|s| !s.is_empty() && s.len() <= MAX_MESSAGE && !s.contains('\n'));
    evaluated
        .or_else(|| {
            validation["message"]
                .as_str()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
        })
        .unwrap_or_else(|| format!("failed expression: {source}"))
}

/// The real server's answer to a denied request.
fn denial(r: &Request<'_>, policy: &str, binding: &str, f: &Failure) -> ApiError {
    let a = &r.attrs;
    let cause = format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}",
        f.message
    );
    let qualified = if a.group.is_empty() {
        a.resource.to_owned()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let code = match f.reason.as_str() {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    };
    let mut e = ApiError::new(
        code,
        &f.reason,
        format!("{qualified} \"{}\" is forbidden: {cause}", a.name),
    );
    let mut details = json!({"name": a.name, "kind": a.resource, "causes": [{"message": cause}]});
    if !a.group.is_empty() {
        details["group"] = json!(a.group);
    }
    e.details = Some(details);
    e
}

/// Compile errors of a ValidatingAdmissionPolicy being written (the real server refuses
/// expressions that do not compile with 422).
pub fn validate_policy(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    for (section, field) in [
        ("matchConditions", "expression"),
        ("variables", "expression"),
        ("validations", "expression"),
        ("validations", "messageExpression"),
    ] {
        for (i, item) in list(&spec[section]).enumerate() {
            let Some(src) = item[field].as_str() else {
                continue;
            };
            if let Err(e) = compile(src) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {src:?}: {e}"),
                    field: format!("spec.{section}[{i}].{field}"),
                });
            }
        }
    }
    causes
}

/// Whether `(group, plural)` is the policy kind whose writes [`validate_policy`] checks.
pub fn is_policy(group: &str, plural: &str) -> bool {
    group == GROUP && plural == POLICIES
}
