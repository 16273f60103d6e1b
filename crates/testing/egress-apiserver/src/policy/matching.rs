//! Which requests a policy (its `matchConstraints`) or a binding (its `matchResources`) is
//! about: `resourceRules` (API groups, versions, operations, resources with the real server's
//! subresource forms `pods/status`, `pods/*`, `*/status`, `*`, `*/*`, resource names, scope),
//! `excludeResourceRules`, `namespaceSelector` and `objectSelector`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde_json::Value;

/// What is being admitted.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: &'a str,
    /// API group.
    pub group: &'a str,
    /// API version of the request.
    pub version: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// Subresource (`status`), if any.
    pub subresource: Option<&'a str>,
    /// Object name (empty for a `generateName` create).
    pub name: &'a str,
    /// Namespace (empty for cluster-scoped resources).
    pub namespace: &'a str,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// The object after the write (none for DELETE).
    pub object: Option<&'a Value>,
    /// The object before the write (none for CREATE).
    pub old: Option<&'a Value>,
    /// The request's Namespace object, if it has one.
    pub namespace_object: Option<&'a Value>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has(list: &[&str], v: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == v)
}

fn resource_listed(list: &[&str], resource: &str, sub: Option<&str>) -> bool {
    list.iter().any(|r| match sub {
        None => *r == "*" || *r == resource,
        Some(sub) => {
            *r == "*/*"
                || *r == format!("{resource}/{sub}")
                || *r == format!("{resource}/*")
                || *r == format!("*/{sub}")
        }
    })
}

fn rule_matches(rule: &Value, a: &Attributes<'_>) -> bool {
    let names = strings(&rule["resourceNames"]);
    let scope = rule["scope"].as_str().unwrap_or("*");
    has(&strings(&rule["apiGroups"]), a.group)
        && has(&strings(&rule["apiVersions"]), a.version)
        && has(&strings(&rule["operations"]), a.operation)
        && resource_listed(&strings(&rule["resources"]), a.resource, a.subresource)
        && (names.is_empty() || names.contains(&a.name))
        && match scope {
            "Cluster" => !a.namespaced,
            "Namespaced" => a.namespaced,
            _ => true,
        }
}

fn labels(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

fn selector(v: &Value) -> Result<Option<Selector>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let ls: LabelSelector =
        serde_json::from_value(v.clone()).map_err(|e| format!("invalid label selector: {e}"))?;
    Selector::try_from(ls)
        .map(Some)
        .map_err(|e| format!("invalid label selector: {e}"))
}

/// Whether a `MatchResources` selects the request; `rules_required` says whether an absent
/// `resourceRules` selects nothing (a policy) or everything (a binding).
pub fn matches(m: &Value, a: &Attributes<'_>, rules_required: bool) -> Result<bool, String> {
    let rules = m["resourceRules"].as_array();
    let included = match rules {
        Some(rules) => rules.iter().any(|r| rule_matches(r, a)),
        None => !rules_required,
    };
    let excluded = m["excludeResourceRules"]
        .as_array()
        .is_some_and(|rules| rules.iter().any(|r| rule_matches(r, a)));
    if !included || excluded {
        return Ok(false);
    }
    if a.namespaced
        && let Some(sel) = selector(&m["namespaceSelector"])?
        && !sel.matches(&labels(a.namespace_object))
    {
        return Ok(false);
    }
    if let Some(sel) = selector(&m["objectSelector"])?
        && !sel.matches(&labels(a.object))
        && !sel.matches(&labels(a.old))
    {
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn attrs<'a>(op: &'a str, sub: Option<&'a str>, object: Option<&'a Value>) -> Attributes<'a> {
        Attributes {
            operation: op,
            group: "apps",
            version: "v1",
            resource: "deployments",
            subresource: sub,
            name: "web",
            namespace: "default",
            namespaced: true,
            object,
            old: None,
            namespace_object: None,
        }
    }

    fn rule(resources: Value) -> Value {
        json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                  "operations": ["CREATE", "UPDATE"], "resources": resources}]})
    }

    #[test]
    fn resource_rules_follow_the_real_subresource_forms() {
        let a = attrs("CREATE", None, None);
        assert!(matches(&rule(json!(["deployments"])), &a, true).unwrap());
        assert!(matches(&rule(json!(["*"])), &a, true).unwrap());
        assert!(!matches(&rule(json!(["deployments/status"])), &a, true).unwrap());
        assert!(
            !matches(
                &rule(json!(["deployments"])),
                &attrs("DELETE", None, None),
                true
            )
            .unwrap()
        );
        let status = attrs("UPDATE", Some("status"), None);
        assert!(!matches(&rule(json!(["deployments"])), &status, true).unwrap());
        assert!(!matches(&rule(json!(["*"])), &status, true).unwrap());
        for r in ["deployments/status", "deployments/*", "*/status", "*/*"] {
            assert!(matches(&rule(json!([r])), &status, true).unwrap(), "{r}");
        }
        assert!(
            !matches(&json!({}), &a, true).unwrap(),
            "a policy needs rules"
        );
        assert!(
            matches(&json!({}), &a, false).unwrap(),
            "a binding narrows only"
        );
        let mut excluded = rule(json!(["*"]));
        excluded["excludeResourceRules"] = json!([{"apiGroups": ["*"], "apiVersions": ["*"],
            "operations": ["*"], "resources": ["deployments"], "resourceNames": ["web"]}]);
        assert!(!matches(&excluded, &a, true).unwrap());
    }

    #[test]
    fn selectors_look_at_the_namespace_and_the_object() {
        let obj = json!({"metadata": {"labels": {"tier": "web"}}});
        let ns = json!({"metadata": {"labels": {"env": "prod"}}});
        let mut a = attrs("CREATE", None, Some(&obj));
        a.namespace_object = Some(&ns);
        let mut m = rule(json!(["*"]));
        m["namespaceSelector"] = json!({"matchLabels": {"env": "prod"}});
        m["objectSelector"] =
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]});
        assert!(matches(&m, &a, true).unwrap());
        m["namespaceSelector"] = json!({"matchLabels": {"env": "dev"}});
        assert!(!matches(&m, &a, true).unwrap());
        m["namespaceSelector"] = json!({"matchExpressions": [{"key": "env", "operator": "Bogus"}]});
        assert!(matches(&m, &a, true).is_err());
    }
}
