//! The generated CRDs are what a real API server accepts and what users rely on: names, scope,
//! status subresources, printer columns, structural schemas, and CEL rules that are in scope,
//! bounded and within the server's cost budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_api::constants::{GROUP, VERSION};
use kube::core::cel::{ScopeContext, analyze_rule, compile_schema};
use serde_json::Value;

#[test]
fn five_namespaced_kinds_with_status_in_one_group_version() {
    let crds = egress_api::crds::all();
    let mut kinds: Vec<String> = crds
        .iter()
        .map(|(_, c)| c.spec.names.kind.clone())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "GatewayLBConfiguration",
            "GatewayStatus",
            "GatewayVMConfiguration",
            "PodEndpoint",
            "StaticGatewayConfiguration"
        ]
    );
    for (file, crd) in &crds {
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.versions.len(), 1);
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, VERSION);
        assert!(v.served && v.storage);
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{file}: no status subresource"
        );
        assert_eq!(file, &format!("{}.yaml", crd.spec.names.plural));
    }
}

#[test]
fn sgc_has_short_name_and_printer_columns() {
    let (_, sgc) = egress_api::crds::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == "StaticGatewayConfiguration")
        .unwrap();
    assert_eq!(
        sgc.spec.names.short_names.as_deref(),
        Some(&["sgc".to_string()][..])
    );
    let cols: Vec<(String, String)> = sgc.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.clone(), c.json_path.clone()))
        .collect();
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Egress Prefix",
            "Egress IPv6 Prefix",
            "Gateway IP",
            "Port",
            "Ready",
            "Pods",
            "Age"
        ]
    );
}

fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else { return };
    let typed = obj.contains_key("type")
        || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed {
        out.push(format!("{path}: no type (schema is not structural)"));
    }
    if obj.contains_key("nullable") {
        out.push(format!("{path}: nullable (our types never write null)"));
    }
    if let Some(rules) = obj
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        let compiled = compile_schema(node);
        for r in rules {
            let rule = r["rule"].as_str().unwrap();
            for w in analyze_rule(rule, &compiled, ScopeContext::CrdValidation) {
                out.push(format!("{path}: rule {rule:?}: {}", w.message));
            }
            if r.get("message").is_none() {
                out.push(format!("{path}: rule {rule:?} has no message"));
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            walk(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(items, &format!("{path}[]"), out);
    }
}

#[test]
fn schemas_are_structural_and_rules_are_bounded_and_in_scope() {
    let mut problems = Vec::new();
    for (file, crd) in egress_api::crds::all() {
        let schema = egress_api::crds::schema_of(&crd).unwrap();
        walk(&schema, &file, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn committed_crd_yaml_is_current() {
    for (file, crd) in egress_api::crds::all() {
        let path = format!("{}/../../config/crd/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            committed,
            serde_json::to_value(&crd).unwrap(),
            "{path} is stale: run `make generate`"
        );
    }
}

#[test]
fn committed_warning_policy_is_current() {
    let path = format!(
        "{}/../../charts/kube-egress-gateway/files/sgc-warnings.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let committed: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        committed,
        egress_api::warnings::policy_rules(),
        "{path} is stale: run `make generate`"
    );
}

#[test]
fn no_crd_carries_a_cel_rule_on_a_field_of_the_original() {
    // The original's CRDs have no x-kubernetes-validations: a rule on one of its fields would
    // refuse a manifest the original accepts, so our extra checks there are warnings (the
    // policy). Fields the original does not have may carry rules: no manifest of the original
    // sets them.
    const OWN_FIELDS_WITH_RULES: [&str; 1] = ["spec.ipFamilies"];
    for (file, crd) in egress_api::crds::all() {
        let schema = egress_api::crds::schema_of(&crd).unwrap();
        let mut found = Vec::new();
        rule_paths(&schema, "", &mut found);
        for path in found {
            assert!(
                OWN_FIELDS_WITH_RULES.contains(&path.as_str()),
                "{file} has a CEL rule at {path}, a field of the original"
            );
        }
    }
}

fn rule_paths(node: &Value, path: &str, out: &mut Vec<String>) {
    if node.get("x-kubernetes-validations").is_some() {
        out.push(path.trim_start_matches('.').to_string());
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            rule_paths(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        rule_paths(items, &format!("{path}[]"), out);
    }
}
