//! The built-in kinds the server serves (Namespace, Node, Pod, Secret, ConfigMap, Event in core
//! and events.k8s.io, Lease, Deployment, ReplicaSet, ValidatingAdmissionPolicy and its binding,
//! CustomResourceDefinition) with the names, scopes, status subresources and field selectors of
//! the real server. The two Event resources are views of one
//! store (see `events`).

use crate::resource::{PrinterColumn, ResourceInfo, VersionInfo, column};

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    field_selectors: &'static [&'static str],
    /// Subresources besides `status` (`scale`; pods' kubelet ones).
    subresources: &'static [&'static str],
}

/// The pod subresources the kubelet serves (proxied by the server to the node's kubelet).
pub const POD_KUBELET_SUBRESOURCES: &[&str] = &["attach", "exec", "log", "portforward"];

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_K8S_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        field_selectors: &["status.phase"],
        subresources: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        status: true,
        field_selectors: &["spec.unschedulable"],
        subresources: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        status: true,
        field_selectors: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        subresources: POD_KUBELET_SUBRESOURCES,
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &["type"],
        subresources: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status: false,
        field_selectors: &[],
        subresources: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        field_selectors: EVENT_FIELDS,
        subresources: &[],
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        field_selectors: EVENTS_K8S_FIELDS,
        subresources: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &[],
        subresources: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        field_selectors: &[],
        subresources: &["scale"],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        status: true,
        field_selectors: &["status.replicas"],
        subresources: &["scale"],
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        kind: "ValidatingAdmissionPolicy",
        plural: "validatingadmissionpolicies",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status: true,
        field_selectors: &[],
        subresources: &[],
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        kind: "ValidatingAdmissionPolicyBinding",
        plural: "validatingadmissionpolicybindings",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status: false,
        field_selectors: &[],
        subresources: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        field_selectors: &[],
        subresources: &[],
    },
];

/// JSONPath printer columns (the kinds with computed columns are in `printers`).
fn columns(kind: &str, group: &str) -> Vec<PrinterColumn> {
    let age = column("Age", "date", ".metadata.creationTimestamp", 0);
    match (group, kind) {
        ("", "Namespace") => vec![column("Status", "string", ".status.phase", 0), age],
        ("", "Secret") => vec![column("Type", "string", ".type", 0), age],
        ("events.k8s.io", "Event") => vec![
            column("Type", "string", ".type", 0),
            column("Reason", "string", ".reason", 0),
            column("Note", "string", ".note", 0),
            age,
        ],
        ("coordination.k8s.io", "Lease") => {
            vec![column("Holder", "string", ".spec.holderIdentity", 0), age]
        }
        ("apiextensions.k8s.io", _) => {
            vec![column(
                "Created At",
                "date",
                ".metadata.creationTimestamp",
                0,
            )]
        }
        _ => Vec::new(),
    }
}

/// The built-in resources, in discovery order.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    BUILTINS
        .iter()
        .map(|b| ResourceInfo {
            group: b.group.to_string(),
            versions: vec![VersionInfo {
                name: b.version.to_string(),
                columns: columns(b.kind, b.group),
                openapi_schema: None,
                schema: None,
                patch_types: None,
            }],
            kind: b.kind.to_string(),
            plural: b.plural.to_string(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
            categories: b.categories.iter().map(|s| s.to_string()).collect(),
            status: b.status,
            field_selectors: b.field_selectors.iter().map(|s| s.to_string()).collect(),
            subresources: b.subresources.iter().map(|s| s.to_string()).collect(),
            custom: false,
        })
        .collect()
}
