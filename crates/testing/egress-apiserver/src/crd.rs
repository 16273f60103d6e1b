//! CustomResourceDefinitions: checking a CRD object, turning it into a served [`ResourceInfo`]
//! (compiling each version's schema once), the status the real server reports once names are
//! accepted, and reading CRD YAML files (multi-document) from a directory.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Cause, StartError};
use crate::registry::version_priority;
use crate::resource::{PrinterColumn, ResourceInfo, VersionInfo};
use crate::schema;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.to_string(),
        message,
        field: field.to_string(),
    }
}

fn required(field: &str) -> Cause {
    cause("FieldValueRequired", field, "Required value".to_string())
}

/// Checks a CRD and builds the resource it serves; the causes become a 422.
pub fn crd_to_resource(crd: &Value) -> Result<ResourceInfo, Vec<Cause>> {
    let mut causes = Vec::new();
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    let name = s(crd, "/metadata/name");
    if group.is_empty() {
        causes.push(required("spec.group"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = s(crd, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let empty = Vec::new();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if versions.is_empty() {
        causes.push(required("spec.versions"));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!("Invalid value: []apiextensions.CustomResourceDefinitionVersion{{...}}: must have exactly one version marked as storage version (found {storage})"),
        ));
    }
    let mut served = Vec::new();
    let mut status = false;
    for (i, v) in versions.iter().enumerate() {
        let vname = s(v, "/name");
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        if v.pointer("/subresources/status").is_some() {
            status = true;
        }
        let openapi = v.pointer("/schema/openAPIV3Schema").cloned();
        let compiled = match &openapi {
            Some(sch) => match schema::compile(sch) {
                Ok(c) => Some(c),
                Err(e) => {
                    causes.push(cause(
                        "FieldValueInvalid",
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        format!("Invalid value: \"\": {e}"),
                    ));
                    None
                }
            },
            None => None,
        };
        let patch_types = match &openapi {
            Some(sch) => match egress_apiserver_patch::TypeInfo::from_openapi_schema(sch) {
                Ok(t) => Some(std::sync::Arc::new(
                    t.with_status_subresource(v.pointer("/subresources/status").is_some()),
                )),
                Err(e) => {
                    causes.push(cause(
                        "FieldValueInvalid",
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        format!("Invalid value: \"\": {e}"),
                    ));
                    None
                }
            },
            None => None,
        };
        let columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| cols.iter().map(printer_column).collect())
            .unwrap_or_default();
        served.push(VersionInfo {
            name: vname.to_string(),
            columns,
            openapi_schema: openapi,
            schema: compiled,
            patch_types,
        });
    }
    served.sort_by_key(|v| std::cmp::Reverse(version_priority(&v.name)));
    if !causes.is_empty() {
        return Err(causes);
    }
    let singular = match s(crd, "/spec/names/singular") {
        "" => kind.to_lowercase(),
        x => x.to_string(),
    };
    let field_selectors = versions
        .iter()
        .flat_map(|v| {
            v.get("selectableFields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| {
            f.get("jsonPath")
                .and_then(Value::as_str)
                .map(|p| p.trim_start_matches('.').to_string())
        })
        .collect();
    Ok(ResourceInfo {
        group: group.to_string(),
        versions: served,
        kind: kind.to_string(),
        plural: plural.to_string(),
        singular,
        namespaced: scope == "Namespaced",
        short_names: strings(crd, "/spec/names/shortNames"),
        categories: strings(crd, "/spec/names/categories"),
        status,
        field_selectors,
        subresources: Vec::new(),
        custom: true,
    })
}

fn printer_column(c: &Value) -> PrinterColumn {
    PrinterColumn {
        name: s(c, "/name").to_string(),
        type_: s(c, "/type").to_string(),
        format: s(c, "/format").to_string(),
        description: s(c, "/description").to_string(),
        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
        json_path: s(c, "/jsonPath").to_string(),
    }
}

/// The status the real server's naming and establishing controllers give an accepted CRD.
pub fn accepted_status(crd: &Value, now: &str) -> Value {
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    if names.get("singular").is_none() {
        names["singular"] = json!(s(crd, "/spec/names/kind").to_lowercase());
    }
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{}List", s(crd, "/spec/names/kind")));
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    })
}

/// Reads every CRD document from `*.yaml`/`*.yml`/`*.json` files in `dir` (or the single file).
pub fn read_crd_files(dir: &Path) -> Result<Vec<(String, Value)>, StartError> {
    let read_err = |p: &Path, source| StartError::ReadCrds {
        path: p.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    if dir.is_file() {
        files.push(dir.to_path_buf());
    } else {
        for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
            let path = entry.map_err(|e| read_err(dir, e))?.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "yaml" | "yml" | "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|source| StartError::ParseCrd {
                path: path.display().to_string(),
                source: Box::new(source),
            })?;
        for value in docs {
            if value.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                out.push((path.display().to_string(), value));
            }
        }
    }
    Ok(out)
}
