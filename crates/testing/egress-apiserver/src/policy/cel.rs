//! CEL for admission policies, on the `cel` crate with the Kubernetes function libraries that
//! kube-cel registers (the same pair `egress-schema` uses for CRD rules): compiling, turning
//! JSON into CEL values (JSON integers are CEL `int`, as on the real server), and evaluating
//! with the policy variables bound (`object`, `oldObject`, `request`, `params`,
//! `namespaceObject`, `variables`).

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::objects::Key;
use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::Value;

/// A compiled expression with its text (for messages).
pub struct Expr {
    /// The source.
    pub source: String,
    program: Program,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Compiles `source`, or says why it does not compile.
pub fn compile(source: &str) -> Result<Expr, String> {
    Program::compile(source)
        .map(|program| Expr {
            source: source.to_owned(),
            program,
        })
        .map_err(|e| format!("compilation failed: {e}"))
}

/// A JSON value as CEL sees it.
pub fn to_cel(v: &Value) -> Cel {
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

/// The variables one admission request binds.
pub struct Bindings {
    ctx: Context<'static>,
    variables: HashMap<Key, Cel>,
}

impl Bindings {
    /// Binds `object`, `oldObject`, `request` and `namespaceObject` (null when absent) and
    /// `params` (always null: parameter resources are not supported).
    pub fn new(object: &Value, old: &Value, request: &Value, namespace: &Value) -> Self {
        let mut ctx = Context::default();
        ctx.register_all();
        ctx.add_variable_from_value("object", to_cel(object));
        ctx.add_variable_from_value("oldObject", to_cel(old));
        ctx.add_variable_from_value("request", to_cel(request));
        ctx.add_variable_from_value("namespaceObject", to_cel(namespace));
        ctx.add_variable_from_value("params", Cel::Null);
        let mut bindings = Self {
            ctx,
            variables: HashMap::new(),
        };
        bindings.rebind_variables();
        bindings
    }

    fn rebind_variables(&mut self) {
        self.ctx
            .add_variable_from_value("variables", Cel::from(self.variables.clone()));
    }

    /// Adds `variables.<name>`. A variable whose expression failed is left out, so an
    /// expression that uses it fails as well (the real server evaluates variables lazily
    /// and fails the same expressions).
    pub fn set_variable(&mut self, name: &str, value: Cel) {
        self.variables
            .insert(Key::String(Arc::new(name.to_owned())), value);
        self.rebind_variables();
    }

    /// Evaluates `expr`.
    pub fn eval(&self, expr: &Expr) -> Result<Cel, String> {
        expr.program.execute(&self.ctx).map_err(|e| e.to_string())
    }

    /// Evaluates a boolean expression (any other result is an error).
    pub fn eval_bool(&self, expr: &Expr) -> Result<bool, String> {
        match self.eval(expr)? {
            Cel::Bool(b) => Ok(b),
            other => Err(format!("expected a bool, got {:?}", other.type_of())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn bindings() -> Bindings {
        Bindings::new(
            &json!({"spec": {"replicas": 3, "name": "x"}, "metadata": {"labels": {"a/b": "c"}}}),
            &Value::Null,
            &json!({"operation": "CREATE", "userInfo": {"username": "u", "groups": ["g"]}}),
            &Value::Null,
        )
    }

    #[test]
    fn json_integers_are_cel_ints_and_maps_support_has_and_in() {
        let b = bindings();
        for (src, want) in [
            ("object.spec.replicas > 1", true),
            ("object.spec.replicas == 3", true),
            ("has(object.spec.name)", true),
            ("has(object.spec.missing)", false),
            ("'a/b' in object.metadata.labels", true),
            ("oldObject == null && params == null", true),
            ("request.userInfo.groups.exists(g, g == 'g')", true),
            ("'%s-%d'.format(['x', 1]) == 'x-1'", true),
        ] {
            assert_eq!(b.eval_bool(&compile(src).unwrap()), Ok(want), "{src}");
        }
        assert!(b.eval_bool(&compile("object.spec.name").unwrap()).is_err());
        assert!(
            b.eval_bool(&compile("object.nothing.here").unwrap())
                .is_err()
        );
        assert!(compile("object.spec.(").is_err());
    }

    #[test]
    fn variables_are_bound_in_order() {
        let mut b = bindings();
        let v = b
            .eval(&compile("object.spec.replicas * 2").unwrap())
            .unwrap();
        b.set_variable("double", v);
        assert_eq!(
            b.eval_bool(&compile("variables.double == 6").unwrap()),
            Ok(true)
        );
        assert!(b.eval_bool(&compile("variables.missing").unwrap()).is_err());
    }
}
