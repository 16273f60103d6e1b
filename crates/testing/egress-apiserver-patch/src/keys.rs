//! Static table of list and map types of built-in kinds: the patch strategy (`patchMergeKey`,
//! `patchStrategy`) and server-side apply list type (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`) of the fields our API server serves.

use serde_json::Value;

/// How server-side apply treats a list (structured-merge-diff's element relationship).
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced and owned as a whole (`f:args: {}`).
    Atomic,
    /// Items are scalars owned one by one (`v:"x"`).
    Set,
    /// Items are objects identified by these key fields (`k:{"name":"c"}`).
    Map(Vec<KeyField>),
}

/// One key field of an associative list, with the default the server would fill in.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyField {
    /// Field name inside the list item.
    pub name: String,
    /// Value used when the item omits the field (e.g. `protocol: TCP` for ports).
    pub default: Option<Value>,
}

impl KeyField {
    /// A key field without default.
    pub fn required(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            default: None,
        }
    }
}

/// How a strategic merge patch treats a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmpList {
    /// The patch list replaces the original.
    Replace,
    /// Object items are merged by this key.
    MergeKey(String),
    /// Scalar items are merged as a set (e.g. `metadata.finalizers`).
    MergePrimitives,
}

/// The list rule for one field: strategic-merge strategy and apply list type.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRule {
    /// Strategic merge patch behaviour.
    pub smp: SmpList,
    /// Server-side apply behaviour.
    pub ssa: ListType,
}

impl ListRule {
    /// The rule for lists without annotations: atomic / replace.
    pub fn atomic() -> Self {
        Self {
            smp: SmpList::Replace,
            ssa: ListType::Atomic,
        }
    }

    fn keyed(smp_key: &str, keys: &[&str]) -> Self {
        Self {
            smp: SmpList::MergeKey(smp_key.to_owned()),
            ssa: ListType::Map(
                keys.iter()
                    .map(|name| KeyField {
                        name: (*name).to_owned(),
                        default: (*name == "protocol").then(|| Value::from("TCP")),
                    })
                    .collect(),
            ),
        }
    }

    fn set() -> Self {
        Self {
            smp: SmpList::MergePrimitives,
            ssa: ListType::Set,
        }
    }
}

/// Marker for "any list item" in schema paths.
pub const ITEM: &str = "[]";

const POD_CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Rules of `ObjectMeta`, valid for every kind (also custom resources) at `metadata.*`.
pub fn metadata_rule(field: &str) -> Option<ListRule> {
    match field {
        "finalizers" => Some(ListRule::set()),
        "ownerReferences" => Some(ListRule::keyed("uid", &["uid"])),
        "managedFields" => Some(ListRule::atomic()),
        _ => None,
    }
}

/// The rule for a list at `path` (field names, [`ITEM`] for list items) in a built-in kind.
pub fn builtin_list_rule(kind: &str, path: &[String]) -> ListRule {
    let n = path.len();
    let last = path.last().map(String::as_str).unwrap_or_default();
    let parent = n.checked_sub(2).map(|i| path[i].as_str());
    let grandparent = n.checked_sub(3).map(|i| path[i].as_str());
    if parent == Some("metadata")
        && let Some(rule) = metadata_rule(last)
    {
        return rule;
    }
    match (parent, last) {
        (Some("spec"), l) if POD_CONTAINER_LISTS.contains(&l) => ListRule::keyed("name", &["name"]),
        (Some(ITEM), "ports") if grandparent.is_some_and(|g| POD_CONTAINER_LISTS.contains(&g)) => {
            ListRule::keyed("containerPort", &["containerPort", "protocol"])
        }
        (Some("spec"), "ports") if n == 2 && kind == "Service" => {
            ListRule::keyed("port", &["port", "protocol"])
        }
        (Some(ITEM), "env") => ListRule::keyed("name", &["name"]),
        (Some(ITEM), "volumeMounts") => ListRule::keyed("mountPath", &["mountPath"]),
        (Some(ITEM), "volumeDevices") => ListRule::keyed("devicePath", &["devicePath"]),
        (Some("spec"), "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            ListRule::keyed("name", &["name"])
        }
        (Some("spec"), "hostAliases") => ListRule::keyed("ip", &["ip"]),
        (Some("spec"), "topologySpreadConstraints") => {
            ListRule::keyed("topologyKey", &["topologyKey", "whenUnsatisfiable"])
        }
        (Some("spec"), "podCIDRs") => ListRule::set(),
        (Some("resources"), "claims") => ListRule::keyed("name", &["name"]),
        (Some("status"), "conditions" | "addresses") => ListRule::keyed("type", &["type"]),
        (Some("status"), "podIPs" | "hostIPs") => ListRule::keyed("ip", &["ip"]),
        _ => ListRule::atomic(),
    }
}

/// Whether the map at `path` in a built-in kind is atomic (owned and replaced as a whole).
pub fn builtin_map_is_atomic(kind: &str, path: &[String]) -> bool {
    let last = path.last().map(String::as_str).unwrap_or_default();
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
    match (parent, last) {
        (Some("spec"), "nodeSelector") => true,
        (Some("spec"), "selector") if path.len() == 2 => matches!(
            kind,
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Service" | "Job"
        ),
        _ => false,
    }
}

/// Built-in kinds this table describes, by (group, kind), with whether they have a status
/// subresource.
pub fn builtin_kind(group: &str, kind: &str) -> Option<bool> {
    match (group, kind) {
        ("", "Pod" | "Node" | "Namespace" | "Service") => Some(true),
        ("", "Secret" | "ConfigMap" | "Event" | "ServiceAccount" | "Endpoints") => Some(false),
        ("events.k8s.io", "Event") | ("coordination.k8s.io", "Lease") => Some(false),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => Some(true),
        ("batch", "Job") => Some(true),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    fn keys(rule: &ListRule) -> Vec<String> {
        match &rule.ssa {
            ListType::Map(keys) => keys.iter().map(|k| k.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn pod_and_deployment_containers_are_keyed_by_name() {
        let pod = builtin_list_rule("Pod", &p("spec.containers"));
        assert_eq!(pod.smp, SmpList::MergeKey("name".into()));
        assert_eq!(keys(&pod), ["name"]);
        let deploy = builtin_list_rule("Deployment", &p("spec.template.spec.initContainers"));
        assert_eq!(keys(&deploy), ["name"]);
        let env = builtin_list_rule("Pod", &p("spec.containers.[].env"));
        assert_eq!(keys(&env), ["name"]);
    }

    #[test]
    fn container_ports_use_port_and_protocol_with_tcp_default() {
        let rule = builtin_list_rule("Pod", &p("spec.containers.[].ports"));
        assert_eq!(rule.smp, SmpList::MergeKey("containerPort".into()));
        let ListType::Map(keys) = rule.ssa else {
            panic!("not a map")
        };
        assert_eq!(keys[1].default, Some(Value::from("TCP")));
        // A field named `ports` elsewhere in a pod is atomic.
        assert_eq!(
            builtin_list_rule("Pod", &p("spec.ports")),
            ListRule::atomic()
        );
    }

    #[test]
    fn metadata_lists_and_atomic_defaults() {
        assert_eq!(
            builtin_list_rule("Pod", &p("metadata.finalizers")).ssa,
            ListType::Set
        );
        assert_eq!(
            keys(&builtin_list_rule("Pod", &p("metadata.ownerReferences"))),
            ["uid"]
        );
        assert_eq!(
            builtin_list_rule("Pod", &p("spec.tolerations")),
            ListRule::atomic()
        );
        assert_eq!(
            builtin_list_rule("Node", &p("spec.taints")),
            ListRule::atomic()
        );
        assert_eq!(
            builtin_list_rule("Pod", &p("spec.containers.[].args")),
            ListRule::atomic()
        );
        assert_eq!(
            keys(&builtin_list_rule("Node", &p("status.conditions"))),
            ["type"]
        );
    }

    #[test]
    fn selectors_are_atomic_maps_only_where_the_api_says_so() {
        assert!(builtin_map_is_atomic("Deployment", &p("spec.selector")));
        assert!(builtin_map_is_atomic("Pod", &p("spec.nodeSelector")));
        assert!(!builtin_map_is_atomic("Pod", &p("metadata.labels")));
        assert!(!builtin_map_is_atomic("Pod", &p("spec.selector")));
    }
}
