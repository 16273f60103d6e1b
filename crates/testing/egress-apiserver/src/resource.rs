//! What the server knows about one served resource (built-in or from a CRD): names, scope,
//! versions, status subresource, printer columns, selectable fields and the compiled schema per
//! version. It holds no objects.

use std::sync::Arc;

use serde_json::Value;

use crate::error::Subject;
use crate::events;
use crate::schema::ObjectSchema;

/// A server-side printer column (`additionalPrinterColumns` of a CRD version).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    /// OpenAPI format, if any.
    pub format: String,
    /// Description shown by `kubectl explain`-like tools.
    pub description: String,
    /// 0 = always shown, >0 = only with `-o wide`.
    pub priority: i64,
    /// Kubernetes JSONPath (`.status.phase`, `.status.conditions[?(@.type=="Ready")].status`).
    pub json_path: String,
}

/// One served version of a resource.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// `v1`, `v1alpha1`, ...
    pub name: String,
    /// Printer columns; empty means the default `Name`/`Age` table.
    pub columns: Vec<PrinterColumn>,
    /// The version's `openAPIV3Schema` (CRDs only), for `/openapi/v3`.
    pub openapi_schema: Option<Value>,
    /// The compiled admission schema (CRDs only).
    pub schema: Option<Arc<dyn ObjectSchema>>,
    /// List/map types for apply and managedFields (CRDs only; built-ins use a fixed table).
    pub patch_types: Option<Arc<egress_apiserver_patch::TypeInfo>>,
}

/// A served resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<VersionInfo>,
    /// `Kind` of the objects.
    pub kind: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl (`cm`, `sgc`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `status` subresource.
    pub status: bool,
    /// Fields usable in field selectors besides `metadata.name`/`metadata.namespace`.
    pub field_selectors: Vec<String>,
    /// Subresources besides `status`: `scale` (Deployments, ReplicaSets), and the kubelet's
    /// `log`, `exec`, `attach`, `portforward` of Pods.
    pub subresources: Vec<String>,
    /// A custom resource (served from a CRD): stricter update rules, no strategic merge.
    pub custom: bool,
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The version entry called `name`.
    pub fn version(&self, name: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// How errors name this resource.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            group: &self.group,
            resource: &self.plural,
        }
    }

    /// Whether `sub` is served for this resource.
    pub fn has_subresource(&self, sub: &str) -> bool {
        (sub == "status" && self.status) || self.subresources.iter().any(|s| s == sub)
    }

    /// The verbs served for this resource.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// The group whose store holds the objects: Events of both views live in core's.
    pub fn storage_group(&self) -> &str {
        if self.custom {
            &self.group
        } else {
            events::storage_group(&self.group, &self.kind)
        }
    }

    fn is_event(&self) -> bool {
        !self.custom && events::is_event(&self.group, &self.kind)
    }

    /// A stored object as served at `version` (Events are converted between their forms).
    pub fn present(&self, mut obj: Value, version: &str) -> Value {
        if !obj.is_object() {
            return obj;
        }
        if self.is_event() {
            return events::present(obj, &self.api_version(version));
        }
        obj["apiVersion"] = Value::String(self.api_version(version));
        obj
    }

    /// The stored form of an object written through this resource.
    pub fn to_storage(&self, obj: Value) -> Value {
        if self.is_event() {
            events::to_storage(obj)
        } else {
            obj
        }
    }

    /// The stored-object fields a field-selector label reads (first non-empty wins).
    pub fn field_paths(&self, label: &str) -> Vec<String> {
        if self.is_event() {
            events::stored_field_paths(&self.group, label)
        } else {
            vec![label.to_string()]
        }
    }

    /// Whether a PUT without `metadata.resourceVersion` is accepted (built-ins: yes, CRs: no).
    pub fn allows_unconditional_update(&self) -> bool {
        !self.custom
    }
}

/// A column list shared by built-ins: `Name` plus `Age` is implied by an empty list.
pub fn column(name: &str, type_: &str, json_path: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description: String::new(),
        priority,
        json_path: json_path.to_string(),
    }
}
