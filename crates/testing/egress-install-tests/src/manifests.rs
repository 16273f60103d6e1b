//! Rendered manifests as JSON values: splitting multi-document YAML and finding objects.

use serde_json::Value;

/// The text is not YAML.
#[derive(Debug, thiserror::Error)]
#[error("failed to parse manifests as YAML")]
pub struct ManifestError(#[source] pub Box<serde_saphyr::Error>);

/// Every non-empty document of a multi-document YAML text.
pub fn parse(text: &str) -> Result<Vec<Value>, ManifestError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError(Box::new(e)))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `kind` of an object.
pub fn kind(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or_default()
}

/// `metadata.name` of an object.
pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// The object of this kind and name.
pub fn find<'a>(objs: &'a [Value], kind_: &str, name_: &str) -> Option<&'a Value> {
    objs.iter().find(|o| kind(o) == kind_ && name(o) == name_)
}

/// All objects of this kind.
pub fn all<'a>(objs: &'a [Value], kind_: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objs.iter().filter(move |o| kind(o) == kind_)
}

/// The pod template spec of a Deployment or DaemonSet.
pub fn pod_spec(obj: &Value) -> &Value {
    &obj["spec"]["template"]["spec"]
}

/// The container `name` of a pod spec (init containers included).
pub fn container<'a>(pod_spec: &'a Value, name_: &str) -> Option<&'a Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod_spec[*k].as_array())
        .flatten()
        .find(|c| c["name"] == name_)
}

/// A container's `args` as strings.
pub fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
