//! Type information a merge needs: for each list its strategy/list type, for each map
//! whether it is atomic, and whether the kind has a status subresource.

use crate::Gvk;
use crate::error::PatchError;
use crate::keys::{self, ListRule, ListType, SmpList};
use crate::schema::SchemaNode;
use serde_json::Value;

/// Where list/map types come from.
#[derive(Debug, Clone)]
enum Source {
    /// A built-in kind described by the static table in [`crate::keys`].
    Builtin { kind: String },
    /// A custom resource with its structural schema.
    Schema(Box<SchemaNode>),
    /// Nothing known: lists are atomic, maps granular (except `metadata.*`).
    Untyped,
}

/// Type information for one kind.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    source: Source,
    status_subresource: bool,
}

impl TypeInfo {
    /// Types of a built-in kind; unknown kinds are untyped without status subresource.
    pub fn builtin(gvk: &Gvk) -> Self {
        match keys::builtin_kind(&gvk.group, &gvk.kind) {
            Some(status) => Self {
                source: Source::Builtin {
                    kind: gvk.kind.clone(),
                },
                status_subresource: status,
            },
            None => Self::untyped(),
        }
    }

    /// No type information: lists atomic, maps granular, no status subresource.
    pub fn untyped() -> Self {
        Self {
            source: Source::Untyped,
            status_subresource: false,
        }
    }

    /// Types of a custom resource version from its `openAPIV3Schema` value.
    pub fn from_openapi_schema(schema: &Value) -> Result<Self, PatchError> {
        Ok(Self {
            source: Source::Schema(Box::new(SchemaNode::parse(schema)?)),
            status_subresource: false,
        })
    }

    /// Types for an object, found from its `apiVersion` and `kind` (built-ins only).
    pub fn for_object(object: &Value) -> Self {
        Self::builtin(&Gvk::of(object))
    }

    /// Declares whether the kind has a status subresource: then writes to the main resource
    /// ignore `status`, and writes to `/status` change only `status`.
    pub fn with_status_subresource(mut self, enabled: bool) -> Self {
        self.status_subresource = enabled;
        self
    }

    /// Whether the kind has a status subresource.
    pub fn status_subresource(&self) -> bool {
        self.status_subresource
    }

    fn metadata_rule(path: &[String]) -> Option<ListRule> {
        match path {
            [meta, field] if meta == "metadata" => keys::metadata_rule(field),
            _ => None,
        }
    }

    /// The list rule at `path` (field names, `[]` for list items).
    pub fn list_rule(&self, path: &[String]) -> ListRule {
        match &self.source {
            Source::Builtin { kind } => keys::builtin_list_rule(kind, path),
            Source::Schema(node) => Self::metadata_rule(path).unwrap_or_else(|| ListRule {
                smp: SmpList::Replace,
                ssa: node
                    .lookup(path)
                    .map_or(ListType::Atomic, SchemaNode::list_type),
            }),
            Source::Untyped => Self::metadata_rule(path).unwrap_or_else(ListRule::atomic),
        }
    }

    /// The apply list type at `path`.
    pub fn list_type(&self, path: &[String]) -> ListType {
        self.list_rule(path).ssa
    }

    /// Whether the map at `path` is atomic.
    pub fn map_is_atomic(&self, path: &[String]) -> bool {
        match &self.source {
            Source::Builtin { kind } => keys::builtin_map_is_atomic(kind, path),
            Source::Schema(node) => node.lookup(path).is_some_and(SchemaNode::map_is_atomic),
            Source::Untyped => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn custom_resources_keep_metadata_rules_and_atomic_lists() {
        let types = TypeInfo::for_object(&json!({"apiVersion": "x.io/v1", "kind": "Thing"}));
        assert!(!types.status_subresource());
        assert_eq!(types.list_type(&p("metadata.finalizers")), ListType::Set);
        assert_eq!(types.list_type(&p("status.conditions")), ListType::Atomic);
    }

    #[test]
    fn builtins_are_found_by_api_version() {
        let pod = TypeInfo::for_object(&json!({"apiVersion": "v1", "kind": "Pod"}));
        assert!(pod.status_subresource());
        assert!(matches!(
            pod.list_type(&p("status.conditions")),
            ListType::Map(_)
        ));
        let deploy = TypeInfo::for_object(&json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
        assert!(deploy.map_is_atomic(&p("spec.selector")));
        let cm = TypeInfo::for_object(&json!({"apiVersion": "v1", "kind": "ConfigMap"}));
        assert!(!cm.status_subresource());
    }

    #[test]
    fn schema_types_apply_below_the_root() {
        let schema = json!({"properties": {"status": {"properties": {"conditions": {
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}}}}});
        let types = TypeInfo::from_openapi_schema(&schema)
            .unwrap()
            .with_status_subresource(true);
        assert!(types.status_subresource());
        assert!(matches!(
            types.list_type(&p("status.conditions")),
            ListType::Map(_)
        ));
        assert_eq!(types.list_type(&p("metadata.finalizers")), ListType::Set);
    }
}
