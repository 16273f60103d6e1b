//! Shapes shared by Network and Compute models: references, SKUs, the unknown-field map.

use serde::{Deserialize, Serialize};

/// Properties this crate does not model, kept verbatim for read-modify-write.
pub type Extra = serde_json::Map<String, serde_json::Value>;

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
