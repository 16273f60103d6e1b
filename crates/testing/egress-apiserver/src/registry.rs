//! The table of served resources: the built-ins plus one entry per registered CRD, looked up by
//! URL segments (group, version, plural) and listed for discovery.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::builtin::builtin_resources;
use crate::resource::ResourceInfo;

/// Served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    builtins: Vec<Arc<ResourceInfo>>,
    /// CRD name -> resource served from it.
    custom: BTreeMap<String, Arc<ResourceInfo>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            builtins: builtin_resources().into_iter().map(Arc::new).collect(),
            custom: BTreeMap::new(),
        }
    }
}

impl Registry {
    /// Every served resource, built-ins first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.builtins.iter().chain(self.custom.values())
    }

    /// The resource `plural` served at `group/version`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.all()
            .find(|r| r.group == group && r.plural == plural && r.version(version).is_some())
            .cloned()
    }

    /// The resource `plural` of `group`, whatever the version.
    pub fn by_group_resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.all()
            .find(|r| r.group == group && r.plural == plural)
            .cloned()
    }

    /// Serves (or re-serves) the resource defined by the CRD `crd_name`.
    pub fn set_custom(&mut self, crd_name: &str, resource: ResourceInfo) {
        self.custom.insert(crd_name.to_string(), Arc::new(resource));
    }

    /// Stops serving the resource of the CRD `crd_name`.
    pub fn remove_custom(&mut self, crd_name: &str) -> Option<Arc<ResourceInfo>> {
        self.custom.remove(crd_name)
    }

    /// Group -> served versions (preferred first), `""` for core, in discovery order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            let idx = match out.iter().position(|(g, _)| *g == r.group) {
                Some(i) => i,
                None => {
                    out.push((r.group.clone(), Vec::new()));
                    out.len() - 1
                }
            };
            for v in &r.versions {
                if !out[idx].1.contains(&v.name) {
                    out[idx].1.push(v.name.clone());
                }
            }
        }
        for (_, versions) in &mut out {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// The resources served at `group/version`.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.all()
            .filter(|r| r.group == group && r.version(version).is_some())
            .cloned()
            .collect()
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by number (`v2` > `v1` > `v1beta2`).
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
        if let Some(n) = tail.strip_prefix(prefix)
            && let Ok(minor) = n.parse::<u64>()
        {
            return (rank, major, minor);
        }
    }
    (0, 0, 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }

    #[test]
    fn builtins_are_found_by_url() {
        let r = Registry::default();
        assert_eq!(
            r.lookup("apps", "v1", "deployments").unwrap().kind,
            "Deployment"
        );
        assert!(r.lookup("apps", "v2", "deployments").is_none());
        assert_eq!(r.in_group_version("events.k8s.io", "v1").len(), 1);
    }
}
