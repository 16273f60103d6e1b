//! Azure resource IDs: building canonical IDs, case-insensitive keys, and parsing references found
//! in request bodies (`subnet.id`, `publicIPPrefix.id`, ...).

/// Provider namespace of network resources.
pub(crate) const NETWORK: &str = "Microsoft.Network";
/// Provider namespace of compute resources.
pub(crate) const COMPUTE: &str = "Microsoft.Compute";

/// Case-insensitive lookup key of a resource ID (ARM IDs compare case-insensitively).
pub(crate) fn key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// `/subscriptions/{sub}/resourceGroups/{rg}`.
pub(crate) fn rg_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{kind}/{name}`.
pub(crate) fn resource_id(sub: &str, rg: &str, provider: &str, kind: &str, name: &str) -> String {
    format!("{}/providers/{provider}/{kind}/{name}", rg_id(sub, rg))
}

/// A parsed resource reference: subscription, resource group, provider and (type, name) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedId {
    pub subscription: String,
    pub resource_group: String,
    pub provider: String,
    pub types: Vec<(String, String)>,
}

impl ParsedId {
    /// Parses `/subscriptions/S/resourceGroups/R/providers/P/t1/n1[/t2/n2...]` case-insensitively.
    pub fn parse(id: &str) -> Option<Self> {
        let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
        if segs.len() < 8 || !segs.len().is_multiple_of(2) {
            return None;
        }
        if !segs[0].eq_ignore_ascii_case("subscriptions")
            || !segs[2].eq_ignore_ascii_case("resourceGroups")
            || !segs[4].eq_ignore_ascii_case("providers")
        {
            return None;
        }
        let types = segs[6..]
            .chunks(2)
            .map(|c| (c[0].to_owned(), c[1].to_owned()))
            .collect();
        Some(Self {
            subscription: segs[1].to_owned(),
            resource_group: segs[3].to_owned(),
            provider: segs[5].to_owned(),
            types,
        })
    }

    /// True when the resource type chain equals `kinds` (case-insensitive), e.g. `["publicIPPrefixes"]`.
    pub fn is_kind(&self, provider: &str, kinds: &[&str]) -> bool {
        self.provider.eq_ignore_ascii_case(provider)
            && self.types.len() == kinds.len()
            && self
                .types
                .iter()
                .zip(kinds)
                .all(|((t, _), k)| t.eq_ignore_ascii_case(k))
    }

    /// ID of the top-level resource this reference is part of (drops child segments).
    pub fn top_level_id(&self) -> Option<String> {
        let (kind, name) = self.types.first()?;
        Some(resource_id(
            &self.subscription,
            &self.resource_group,
            &self.provider,
            kind,
            name,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_child_reference_case_insensitively() {
        let p = ParsedId::parse(
            "/SUBSCRIPTIONS/s/resourcegroups/rg/providers/microsoft.network/loadBalancers/lb/FrontendIPConfigurations/fe",
        )
        .unwrap();
        assert!(p.is_kind(NETWORK, &["loadbalancers", "frontendIPConfigurations"]));
        assert_eq!(p.types[1].1, "fe");
        assert_eq!(
            key(&p.top_level_id().unwrap()),
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/loadbalancers/lb"
        );
    }

    #[test]
    fn rejects_non_resource_ids() {
        assert!(ParsedId::parse("/subscriptions/s/resourceGroups/rg").is_none());
        assert!(ParsedId::parse("not-an-id").is_none());
        assert!(ParsedId::parse("/subscriptions/s/resourceGroups/rg/providers/P/t").is_none());
    }
}
