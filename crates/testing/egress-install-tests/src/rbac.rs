//! The RBAC a rendered chart grants one ServiceAccount, and whether it allows a request the
//! way the API server's authorizer decides: ClusterRoles bound by ClusterRoleBindings apply
//! everywhere, Roles (or ClusterRoles) bound by RoleBindings only in the binding's namespace;
//! requests without a namespace (cluster-scoped kinds, lists across namespaces) need the former.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::manifests::{all, find, kind, name};

/// Where a rule applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every namespace and cluster-scoped objects.
    Cluster,
    /// Only this namespace.
    Namespace(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster"),
            Scope::Namespace(ns) => write!(f, "namespace {ns}"),
        }
    }
}

/// One policy rule with where it applies and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// API groups (`""` is core).
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/status`).
    pub resources: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Resource names, empty for all.
    pub resource_names: Vec<String>,
    /// Where it applies.
    pub scope: Scope,
    /// `Kind/name` of the role.
    pub source: String,
}

/// One API request as the request log records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// Verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    pub verb: String,
    /// API group, empty for core.
    pub group: String,
    /// Resource, `plural` or `plural/subresource`.
    pub resource: String,
    /// Namespace of the request, `None` for cluster-scoped or all-namespace requests.
    pub namespace: Option<String>,
    /// Object name for item requests.
    pub name: Option<String>,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {}/{}", self.verb, group, self.resource)?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => f.write_str(" (cluster-wide)"),
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn binds(binding: &Value, sa: &str, sa_ns: &str) -> bool {
    binding["subjects"].as_array().is_some_and(|subjects| {
        subjects
            .iter()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == sa_ns)
    })
}

fn rules_of(role: &Value, scope: &Scope) -> Vec<Grant> {
    let source = format!("{}/{}", kind(role), name(role));
    role["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| Grant {
                    api_groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                    resource_names: strings(&r["resourceNames"]),
                    scope: scope.clone(),
                    source: source.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything the rendered objects grant the ServiceAccount `sa_ns/sa`.
pub fn grants_for(objs: &[Value], sa: &str, sa_ns: &str) -> Vec<Grant> {
    let mut out = Vec::new();
    for b in all(objs, "ClusterRoleBinding").filter(|b| binds(b, sa, sa_ns)) {
        if let Some(role) = find(
            objs,
            "ClusterRole",
            b["roleRef"]["name"].as_str().unwrap_or(""),
        ) {
            out.extend(rules_of(role, &Scope::Cluster));
        }
    }
    for b in all(objs, "RoleBinding").filter(|b| binds(b, sa, sa_ns)) {
        let ns = b["metadata"]["namespace"].as_str().unwrap_or_default();
        let role_kind = b["roleRef"]["kind"].as_str().unwrap_or_default();
        let role_name = b["roleRef"]["name"].as_str().unwrap_or_default();
        let role = objs.iter().find(|o| {
            kind(o) == role_kind
                && name(o) == role_name
                && (role_kind == "ClusterRole" || o["metadata"]["namespace"] == ns)
        });
        if let Some(role) = role {
            out.extend(rules_of(role, &Scope::Namespace(ns.to_owned())));
        }
    }
    out
}

fn matches(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x == "*" || x == v)
}

impl Grant {
    /// Whether this rule allows the request.
    pub fn allows(&self, a: &Access) -> bool {
        let in_scope = match &self.scope {
            Scope::Cluster => true,
            Scope::Namespace(ns) => a.namespace.as_deref() == Some(ns.as_str()),
        };
        let named = self.resource_names.is_empty()
            || a.name
                .as_deref()
                .is_some_and(|n| self.resource_names.iter().any(|r| r == n));
        in_scope
            && named
            && matches(&self.api_groups, &a.group)
            && matches(&self.resources, &a.resource)
            && matches(&self.verbs, &a.verb)
    }

    /// The (group, resource, verb) triples of this rule.
    pub fn triples(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for g in &self.api_groups {
            for r in &self.resources {
                for v in &self.verbs {
                    out.push((g.clone(), r.clone(), v.clone()));
                }
            }
        }
        out
    }
}

/// Requests no grant allows.
pub fn denied<'a>(grants: &[Grant], accesses: &'a BTreeSet<Access>) -> Vec<&'a Access> {
    accesses
        .iter()
        .filter(|a| !grants.iter().any(|g| g.allows(a)))
        .collect()
}

/// Granted (source, scope, group, resource, verb) never used by any request.
pub fn unused(grants: &[Grant], accesses: &BTreeSet<Access>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for g in grants {
        for (group, resource, verb) in g.triples() {
            let used = accesses.iter().any(|a| {
                a.group == group && a.resource == resource && a.verb == verb && g.allows(a)
            });
            if !used {
                let group = if group.is_empty() { "core" } else { &group };
                out.insert(format!("{verb} {group}/{resource} ({})", g.scope));
            }
        }
    }
    out
}
