//! ARM resource IDs as values: parsing (`/subscriptions/../resourceGroups/../providers/..`,
//! keywords case-insensitive as ARM treats them), canonical display and case-insensitive equality.
//! It does not know which resource types exist; callers check that with [`ResourceId::expect_type`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Why a string is not a usable ARM resource ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    /// The ID does not start with `/subscriptions/{id}`.
    #[error("failed to parse resource ID {id:?}: it must start with /subscriptions/<subscription>")]
    MissingSubscription {
        /// The rejected input.
        id: String,
    },
    /// A path segment is empty (double slash or trailing slash).
    #[error("failed to parse resource ID {id:?}: empty path segment")]
    EmptySegment {
        /// The rejected input.
        id: String,
    },
    /// A segment that must be followed by a value is the last one, or an unknown keyword appears.
    #[error("failed to parse resource ID {id:?}: {reason}")]
    Malformed {
        /// The rejected input.
        id: String,
        /// Which part is wrong.
        reason: &'static str,
    },
    /// The ID parses but names another kind of resource.
    #[error("resource ID {id} is of type {actual:?}, expected {expected:?}")]
    WrongType {
        /// The ID that was checked.
        id: String,
        /// Its type, e.g. `Microsoft.Network/loadBalancers`.
        actual: String,
        /// The type the caller needed.
        expected: String,
    },
}

/// A resource group: the scope of list operations.
#[derive(Debug, Clone, Eq)]
pub struct ResourceGroupId {
    subscription: String,
    name: String,
}

impl ResourceGroupId {
    /// A resource group in a subscription.
    pub fn new(subscription: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            subscription: subscription.into(),
            name: name.into(),
        }
    }

    /// Subscription ID.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// Resource group name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A top-level resource of this group, e.g. `("Microsoft.Network", "loadBalancers", "lb")`.
    pub fn resource(&self, provider: &str, resource_type: &str, name: &str) -> ResourceId {
        ResourceId {
            subscription: self.subscription.clone(),
            resource_group: Some(self.name.clone()),
            provider: Some(provider.to_string()),
            segments: vec![(resource_type.to_string(), name.to_string())],
        }
    }

    /// `Microsoft.Network/loadBalancers/{name}`.
    pub fn load_balancer(&self, name: &str) -> ResourceId {
        self.resource("Microsoft.Network", "loadBalancers", name)
    }

    /// `Microsoft.Network/publicIPPrefixes/{name}`.
    pub fn public_ip_prefix(&self, name: &str) -> ResourceId {
        self.resource("Microsoft.Network", "publicIPPrefixes", name)
    }

    /// `Microsoft.Network/publicIPAddresses/{name}`.
    pub fn public_ip_address(&self, name: &str) -> ResourceId {
        self.resource("Microsoft.Network", "publicIPAddresses", name)
    }

    /// `Microsoft.Network/networkInterfaces/{name}`.
    pub fn network_interface(&self, name: &str) -> ResourceId {
        self.resource("Microsoft.Network", "networkInterfaces", name)
    }

    /// `Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}`.
    pub fn subnet(&self, vnet: &str, subnet: &str) -> ResourceId {
        self.resource("Microsoft.Network", "virtualNetworks", vnet)
            .child("subnets", subnet)
    }

    /// `Microsoft.Compute/virtualMachineScaleSets/{name}`.
    pub fn scale_set(&self, name: &str) -> ResourceId {
        self.resource("Microsoft.Compute", "virtualMachineScaleSets", name)
    }
}

impl fmt::Display for ResourceGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.name
        )
    }
}

impl PartialEq for ResourceGroupId {
    fn eq(&self, other: &Self) -> bool {
        self.subscription.eq_ignore_ascii_case(&other.subscription)
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

/// A parsed ARM resource ID. Equality and hashing ignore ASCII case, as ARM does.
#[derive(Debug, Clone)]
pub struct ResourceId {
    subscription: String,
    resource_group: Option<String>,
    provider: Option<String>,
    /// `(type, name)` pairs from the top-level resource down to this one.
    segments: Vec<(String, String)>,
}

impl ResourceId {
    /// Parses an ID such as
    /// `/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb`.
    pub fn parse(id: &str) -> Result<Self, ResourceIdError> {
        let malformed = |reason| ResourceIdError::Malformed {
            id: id.to_string(),
            reason,
        };
        let rest = id
            .strip_prefix('/')
            .ok_or_else(|| ResourceIdError::MissingSubscription { id: id.to_string() })?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ResourceIdError::EmptySegment { id: id.to_string() });
        }
        let mut it = parts.into_iter();
        match (it.next(), it.next()) {
            (Some(k), Some(sub)) if k.eq_ignore_ascii_case("subscriptions") => {
                let mut out = ResourceId {
                    subscription: sub.to_string(),
                    resource_group: None,
                    provider: None,
                    segments: Vec::new(),
                };
                let mut next = it.next();
                if next.is_some_and(|k| k.eq_ignore_ascii_case("resourceGroups")) {
                    let rg = it
                        .next()
                        .ok_or_else(|| malformed("resourceGroups has no name"))?;
                    out.resource_group = Some(rg.to_string());
                    next = it.next();
                }
                if let Some(k) = next {
                    if !k.eq_ignore_ascii_case("providers") {
                        return Err(malformed("expected 'providers' after the scope"));
                    }
                    let ns = it
                        .next()
                        .ok_or_else(|| malformed("providers has no namespace"))?;
                    out.provider = Some(ns.to_string());
                    let rest: Vec<&str> = it.collect();
                    if rest.is_empty() || !rest.len().is_multiple_of(2) {
                        return Err(malformed(
                            "resource types and names must come in pairs after the provider",
                        ));
                    }
                    out.segments = rest
                        .chunks(2)
                        .map(|c| (c[0].to_string(), c[1].to_string()))
                        .collect();
                }
                Ok(out)
            }
            _ => Err(ResourceIdError::MissingSubscription { id: id.to_string() }),
        }
    }

    /// Subscription ID.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// Resource group name, if the ID is inside one.
    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_deref()
    }

    /// The resource group this resource lives in, if any.
    pub fn resource_group_id(&self) -> Option<ResourceGroupId> {
        self.resource_group
            .as_ref()
            .map(|rg| ResourceGroupId::new(self.subscription.clone(), rg.clone()))
    }

    /// Provider namespace, e.g. `Microsoft.Network`.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// Full type, e.g. `Microsoft.Network/virtualNetworks/subnets`; empty for a bare scope.
    pub fn resource_type(&self) -> String {
        let mut t = self.provider.clone().unwrap_or_default();
        for (ty, _) in &self.segments {
            t.push('/');
            t.push_str(ty);
        }
        t
    }

    /// Name of the resource (last segment), or of the resource group / subscription for a scope.
    pub fn name(&self) -> &str {
        match (self.segments.last(), &self.resource_group) {
            (Some((_, n)), _) => n,
            (None, Some(rg)) => rg,
            (None, None) => &self.subscription,
        }
    }

    /// The enclosing resource (`.../virtualNetworks/v` for a subnet), if this is a child.
    pub fn parent(&self) -> Option<ResourceId> {
        if self.segments.len() < 2 {
            return None;
        }
        let mut p = self.clone();
        p.segments.pop();
        Some(p)
    }

    /// A child resource, e.g. `lb.child("frontendIPConfigurations", "fe")`.
    pub fn child(&self, resource_type: &str, name: &str) -> ResourceId {
        let mut c = self.clone();
        c.segments
            .push((resource_type.to_string(), name.to_string()));
        c
    }

    /// Checks the type (case-insensitively), e.g. `"Microsoft.Network/publicIPPrefixes"`.
    pub fn expect_type(&self, expected: &str) -> Result<&Self, ResourceIdError> {
        let actual = self.resource_type();
        if actual.eq_ignore_ascii_case(expected) {
            Ok(self)
        } else {
            Err(ResourceIdError::WrongType {
                id: self.to_string(),
                actual,
                expected: expected.to_string(),
            })
        }
    }

    fn canonical_lower(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/subscriptions/{}", self.subscription)?;
        if let Some(rg) = &self.resource_group {
            write!(f, "/resourceGroups/{rg}")?;
        }
        if let Some(p) = &self.provider {
            write!(f, "/providers/{p}")?;
        }
        for (ty, name) in &self.segments {
            write!(f, "/{ty}/{name}")?;
        }
        Ok(())
    }
}

impl FromStr for ResourceId {
    type Err = ResourceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.canonical_lower() == other.canonical_lower()
    }
}
impl Eq for ResourceId {}

impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical_lower().hash(state);
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_lowercase_keywords_and_displays_canonically() {
        let id = ResourceId::parse(
            "/SUBSCRIPTIONS/sub/resourcegroups/RG/providers/Microsoft.Network/publicIPPrefixes/p1",
        )
        .unwrap();
        assert_eq!(id.subscription(), "sub");
        assert_eq!(id.resource_group(), Some("RG"));
        assert_eq!(id.name(), "p1");
        assert_eq!(id.resource_type(), "Microsoft.Network/publicIPPrefixes");
        assert_eq!(
            id.to_string(),
            "/subscriptions/sub/resourceGroups/RG/providers/Microsoft.Network/publicIPPrefixes/p1"
        );
        assert!(id.expect_type("microsoft.network/publicipprefixes").is_ok());
    }

    #[test]
    fn equality_ignores_case_and_children_nest() {
        let rg = ResourceGroupId::new("s", "rg");
        let subnet = rg.subnet("vnet", "default");
        let parsed = ResourceId::parse(
            "/subscriptions/S/resourceGroups/RG/providers/microsoft.network/virtualNetworks/VNET/subnets/default",
        )
        .unwrap();
        assert_eq!(subnet, parsed);
        assert_eq!(parsed.parent().unwrap().name(), "VNET");
        assert_eq!(
            parsed.resource_type(),
            "microsoft.network/virtualNetworks/subnets"
        );
        let set: std::collections::HashSet<_> = [subnet, parsed].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn rejects_malformed_ids_with_reason() {
        assert!(matches!(
            ResourceId::parse("subscriptions/s"),
            Err(ResourceIdError::MissingSubscription { .. })
        ));
        assert!(matches!(
            ResourceId::parse("/subscriptions/s/resourceGroups/rg/"),
            Err(ResourceIdError::EmptySegment { .. })
        ));
        assert!(matches!(
            ResourceId::parse(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers"
            ),
            Err(ResourceIdError::Malformed { .. })
        ));
        assert!(matches!(
            ResourceId::parse("/subscriptions/s/resourceGroups/rg/things/x"),
            Err(ResourceIdError::Malformed { .. })
        ));
        let lb = ResourceGroupId::new("s", "rg").load_balancer("lb");
        let err = lb
            .expect_type("Microsoft.Network/publicIPPrefixes")
            .unwrap_err();
        assert!(err.to_string().contains("Microsoft.Network/loadBalancers"));
    }

    #[test]
    fn serde_round_trip() {
        let id = ResourceGroupId::new("s", "rg").scale_set("vmss");
        let json = serde_json::to_string(&id).unwrap();
        let back: ResourceId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ResourceId>("\"/nope\"").is_err());
    }
}
