//! Shapes shared by Network and Compute models: the two ARM envelopes (top-level resources and
//! named child resources) around typed `properties`, references, SKUs, the unknown-field map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Properties this crate does not model, kept verbatim for read-modify-write.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// A top-level (tracked) ARM resource: the envelope every resource we touch shares, around its
/// typed `properties`. Fields a resource type lacks simply stay `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "P: Deserialize<'de> + Default"))]
pub struct Resource<P> {
    /// Resource ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Etag for `If-Match`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// SKU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// Tags (e.g. `aks-managed-poolName`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Properties.
    #[serde(default)]
    pub properties: P,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A named child resource (ipConfigurations, frontends, probes, rules, subnets, NIC
/// configurations) around its typed `properties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "P: Deserialize<'de> + Default"))]
pub struct Child<P> {
    /// Resource ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Properties.
    #[serde(default)]
    pub properties: P,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reference to another resource (`{"id": "..."}`), keeping any other fields ARM returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubResource {
    /// Resource ID (compare with [`crate::ResourceId`] for case-insensitive equality).
    #[serde(default)]
    pub id: String,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl SubResource {
    /// A reference to `id`.
    pub fn new(id: impl ToString) -> Self {
        Self {
            id: id.to_string(),
            extra: Extra::new(),
        }
    }

    /// Case-insensitive comparison with an ID, as ARM compares IDs.
    pub fn refers_to(&self, id: &str) -> bool {
        self.id.eq_ignore_ascii_case(id)
    }
}

/// Resource SKU (`{"name": "Standard", "tier": "Regional"}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sku {
    /// SKU name, e.g. `Standard`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SKU tier, e.g. `Regional`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Sku {
    /// `Standard` / `Regional`, the SKU of every load balancer, prefix and public IP we create.
    pub fn standard_regional() -> Self {
        Self {
            name: Some("Standard".into()),
            tier: Some("Regional".into()),
            extra: Extra::new(),
        }
    }
}

/// Deserializes `null` like an absent field (ARM sometimes sends `null` for empty collections).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
