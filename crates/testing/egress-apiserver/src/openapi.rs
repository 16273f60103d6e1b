//! `/openapi/v3`: the index of group-version documents and each document's paths and schemas,
//! as much as kubectl needs: `patch`/`post` operations tagged with
//! `x-kubernetes-group-version-kind` and a `fieldValidation` parameter (so kubectl lets the
//! server validate), the accepted patch content types, and CRD schemas as components.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::Registry;
use crate::resource::ResourceInfo;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn schema_name(res: &ResourceInfo, version: &str) -> String {
    let reversed: Vec<&str> = res.group.split('.').rev().collect();
    format!("{}.{version}.{}", reversed.join("."), res.kind)
}

fn params(names: &[&str]) -> Value {
    json!(
        names
            .iter()
            .map(|n| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
            .collect::<Vec<_>>()
    )
}

fn path_params(namespaced: bool, item: bool) -> Vec<Value> {
    let mut out = Vec::new();
    if item {
        out.push(
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
    }
    if namespaced {
        out.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    out
}

fn operations(res: &ResourceInfo, version: &str) -> (Value, Value) {
    let gvk = json!({"group": res.group, "version": version, "kind": res.kind});
    let body_schema = if res.custom {
        json!({"$ref": format!("#/components/schemas/{}", schema_name(res, version))})
    } else {
        json!({"type": "object"})
    };
    // Strategic merge is accepted for built-ins but not advertised: kubectl would then build
    // the patch from these (schema-less) documents instead of its compiled-in types.
    let patch_types = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    let content: Map<String, Value> = patch_types
        .iter()
        .map(|t| (t.to_string(), json!({"schema": {"type": "object"}})))
        .collect();
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": body_schema}}}});
    let item = json!({
        "parameters": path_params(res.namespaced, true),
        "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get",
                "responses": ok},
        "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put",
                "parameters": params(&["dryRun", "fieldManager", "fieldValidation"]),
                "requestBody": {"content": {"application/json": {"schema": body_schema}}},
                "responses": ok},
        "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                  "parameters": params(&["dryRun", "fieldManager", "fieldValidation", "force"]),
                  "requestBody": {"content": content},
                  "responses": ok},
        "delete": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "delete",
                   "responses": ok},
    });
    let collection = json!({
        "parameters": path_params(res.namespaced, false),
        "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "list",
                "parameters": params(&["labelSelector", "fieldSelector", "limit", "continue",
                                       "watch", "resourceVersion", "timeoutSeconds",
                                       "allowWatchBookmarks", "sendInitialEvents"]),
                "responses": ok},
        "post": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "post",
                 "parameters": params(&["dryRun", "fieldManager", "fieldValidation"]),
                 "requestBody": {"content": {"application/json": {"schema": body_schema}}},
                 "responses": ok},
    });
    (collection, item)
}

/// One group-version document.
pub fn document(reg: &Registry, group: &str, version: &str) -> Result<Value, ApiError> {
    let resources = reg.in_group_version(group, version);
    if resources.is_empty() {
        return Err(ApiError::no_route(&format!(
            "/openapi/v3/{}",
            gv_path(group, version)
        )));
    }
    let prefix = format!("/{}", gv_path(group, version));
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for res in &resources {
        let (collection, item) = operations(res, version);
        let base = if res.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", res.plural)
        } else {
            format!("{prefix}/{}", res.plural)
        };
        paths.insert(format!("{base}/{{name}}"), item);
        paths.insert(base, collection);
        if let Some(schema) = res.version(version).and_then(|v| v.openapi_schema.clone()) {
            let mut schema = schema;
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": res.group, "version": version, "kind": res.kind}]);
            schemas.insert(schema_name(res, version), schema);
        }
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v3`: one entry per group-version, with a hash that changes with its content.
pub fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let hash = document(reg, &group, &v)
                .map(|d| {
                    let mut h = DefaultHasher::new();
                    d.to_string().hash(&mut h);
                    format!("{:016X}", h.finish())
                })
                .unwrap_or_default();
            let p = gv_path(&group, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}
