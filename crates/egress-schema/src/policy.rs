//! Offline evaluation of a ValidatingAdmissionPolicy's `variables` and `validations` against
//! an object (and, for updates, its old version), as the API server does for a binding with
//! `validationActions: [Warn]`: each failing validation yields its message (`messageExpression`
//! if it evaluates to one line of text, else `message`). Used by `egressctl validate` to give
//! the warnings the cluster would give, from the same CEL.
//!
//! Expressions that fail to evaluate are skipped, as `failurePolicy: Ignore` makes the server
//! do (the policy we ship uses it: a warning must never block a write).

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::objects::Key;
use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::Value;

use crate::SchemaError;

/// The real server's limit on a message produced by `messageExpression`.
const MAX_MESSAGE: usize = 5 * 1024;

struct Compiled {
    source: String,
    program: Program,
}

struct Rule {
    expression: Compiled,
    message_expression: Option<Compiled>,
    message: String,
}

/// A compiled set of policy rules (the `spec.variables` and `spec.validations` of a policy).
pub struct PolicyRules {
    variables: Vec<(String, Compiled)>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for PolicyRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRules")
            .field("variables", &self.variables.len())
            .field("validations", &self.rules.len())
            .finish()
    }
}

fn compile(source: &str) -> Result<Compiled, SchemaError> {
    Program::compile(source)
        .map(|program| Compiled {
            source: source.to_owned(),
            program,
        })
        .map_err(|e| SchemaError::CelCompilation(format!("{source}: {e}")))
}

/// A JSON value as CEL sees it (JSON integers are CEL `int`, as on the server).
fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let entries: HashMap<Key, Cel> = map
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Cel::from(entries)
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl PolicyRules {
    /// Compiles `{"variables": [{name, expression}], "validations": [{expression,
    /// messageExpression?, message?}]}`; every expression must compile.
    pub fn new(rules: &Value) -> Result<Self, SchemaError> {
        let list = |key: &str| rules.get(key).and_then(Value::as_array).cloned();
        let mut variables = Vec::new();
        for v in list("variables").unwrap_or_default() {
            let name = text(&v, "name").unwrap_or_default();
            let expr = text(&v, "expression").unwrap_or_default();
            variables.push((name, compile(&expr)?));
        }
        let mut out = Vec::new();
        for v in list("validations").unwrap_or_default() {
            let expression = compile(&text(&v, "expression").unwrap_or_default())?;
            let message_expression = text(&v, "messageExpression")
                .map(|m| compile(&m))
                .transpose()?;
            let message = text(&v, "message")
                .unwrap_or_else(|| format!("failed expression: {}", expression.source));
            out.push(Rule {
                expression,
                message_expression,
                message,
            });
        }
        Ok(Self {
            variables,
            rules: out,
        })
    }

    /// The messages of the validations `object` fails (`old`: the stored version on update).
    pub fn warnings(&self, object: &Value, old: Option<&Value>) -> Vec<String> {
        let mut ctx = Context::default();
        ctx.register_all();
        ctx.add_variable_from_value("object", to_cel(object));
        ctx.add_variable_from_value("oldObject", old.map_or(Cel::Null, to_cel));
        ctx.add_variable_from_value("params", Cel::Null);
        let mut vars: HashMap<Key, Cel> = HashMap::new();
        for (name, expr) in &self.variables {
            ctx.add_variable_from_value("variables", Cel::from(vars.clone()));
            // A variable that fails is left out: expressions using it fail (and are skipped).
            if let Ok(value) = expr.program.execute(&ctx) {
                vars.insert(Key::String(Arc::new(name.clone())), value);
            }
        }
        ctx.add_variable_from_value("variables", Cel::from(vars));
        self.rules
            .iter()
            .filter(|r| matches!(r.expression.program.execute(&ctx), Ok(Cel::Bool(false))))
            .map(|r| {
                r.message_expression
                    .as_ref()
                    .and_then(|m| match m.program.execute(&ctx) {
                        Ok(Cel::String(s)) => Some(s.trim().to_owned()),
                        _ => None,
                    })
                    .filter(|s| !s.is_empty() && s.len() <= MAX_MESSAGE && !s.contains('\n'))
                    .unwrap_or_else(|| r.message.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn failing_validations_give_their_message_and_variables_chain() {
        let rules = PolicyRules::new(&json!({
            "variables": [
                {"name": "n", "expression": "has(object.spec.n) ? object.spec.n : 0"},
                {"name": "big", "expression": "variables.n > 10"}
            ],
            "validations": [
                {"expression": "!variables.big", "messageExpression": "'spec.n: ' + string(variables.n) + ' is big'"},
                {"expression": "oldObject == null || oldObject.spec.n == variables.n", "message": "spec.n: changed"},
                {"expression": "object.spec.missing.deeper", "message": "never: evaluation fails"},
                {"expression": "size(object.spec.cidrs.filter(c, !isCIDR(c))) == 0",
                 "messageExpression": "object.spec.cidrs.filter(c, !isCIDR(c)).join(', ')"}
            ]
        }))
        .unwrap();
        let obj = json!({"spec": {"n": 11, "cidrs": ["10.0.0.0/8", "bogus", "x"]}});
        assert_eq!(
            rules.warnings(&obj, None),
            ["spec.n: 11 is big", "bogus, x"]
        );
        let old = json!({"spec": {"n": 3, "cidrs": []}});
        assert_eq!(
            rules.warnings(&json!({"spec": {"n": 1, "cidrs": []}}), Some(&old)),
            ["spec.n: changed"]
        );
        assert!(PolicyRules::new(&json!({"validations": [{"expression": "object.("}]})).is_err());
    }
}
