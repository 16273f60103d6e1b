//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/GROUP` and the per group-version
//! resource lists (verbs, short names, categories, subresources), in the legacy (unaggregated)
//! JSON form that every client accepts.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::Registry;

/// The Kubernetes version this server claims to be.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-egress-apiserver",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(json!({})),
    })
}

/// `/apis`.
pub fn groups(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(reg: &Registry, name: &str) -> Result<Value, ApiError> {
    let (g, vs) = reg
        .groups()
        .into_iter()
        .find(|(g, _)| g == name && !g.is_empty())
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{name}")))?;
    let mut doc = group_doc(&g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Ok(doc)
}

/// The discovery entry of a subresource other than `status` (as the real server lists them).
fn subresource_entry(plural: &str, sub: &str, namespaced: bool) -> Value {
    let mut entry = json!({
        "name": format!("{plural}/{sub}"),
        "singularName": "",
        "namespaced": namespaced,
    });
    let (kind, verbs) = match sub {
        "scale" => {
            entry["group"] = json!("autoscaling");
            entry["version"] = json!("v1");
            ("Scale", json!(["get", "patch", "update"]))
        }
        "log" => ("Pod", json!(["get"])),
        "exec" => ("PodExecOptions", json!(["create", "get"])),
        "attach" => ("PodAttachOptions", json!(["create", "get"])),
        "portforward" => ("PodPortForwardOptions", json!(["create", "get"])),
        _ => ("", json!([])),
    };
    entry["kind"] = json!(kind);
    entry["verbs"] = verbs;
    entry
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Result<Value, ApiError> {
    let resources = reg.in_group_version(group, version);
    if resources.is_empty() {
        let path = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        return Err(ApiError::no_route(&path));
    }
    let mut out = Vec::new();
    for r in resources {
        out.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        if r.status {
            out.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        for sub in &r.subresources {
            out.push(subresource_entry(&r.plural, sub, r.namespaced));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": out,
    }))
}
