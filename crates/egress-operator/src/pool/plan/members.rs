//! Pure gathering of a pool's members from the cached objects: every GatewayLBConfiguration
//! routed to the pool (by any alias of it), its GatewayVMConfiguration and SGC, whether each is
//! being removed, and which SGCs of the pool are still waiting for their internal objects (so
//! that SGCs created together are provisioned in one pass).

use std::sync::Arc;

use egress_api::{GatewayLBConfiguration, GatewayVMConfiguration, StaticGatewayConfiguration};
use kube::{Resource, ResourceExt};

use crate::target::{
    Ipv6Egress, PoolKey, TargetError, ValidTarget, pool_key, validate, validate_ipv6,
};

/// One gateway of the pool.
#[derive(Debug, Clone)]
pub struct Member {
    /// Namespace of the SGC chain.
    pub namespace: String,
    /// Name of the SGC chain.
    pub name: String,
    /// The SGC, if it still exists.
    pub sgc: Option<Arc<StaticGatewayConfiguration>>,
    /// The LB configuration.
    pub lb: Arc<GatewayLBConfiguration>,
    /// The VM configuration, once created.
    pub vm: Option<Arc<GatewayVMConfiguration>>,
    /// LB configuration UID: rule and probe name.
    pub lb_uid: String,
    /// SGC UID (the LB configuration's controller owner): probe path.
    pub sgc_uid: String,
    /// VM configuration UID: ipConfig and managed prefix name.
    pub vm_uid: Option<String>,
    /// The LB configuration is being deleted: remove the rule (and everything of the VM side).
    pub removing_lb: bool,
    /// The VM side is being removed: ipConfigs and managed prefix.
    pub removing_vm: bool,
    /// The validated target.
    pub target: Result<ValidTarget, TargetError>,
    /// Its IPv6 half (`Off` without `IPv6` in `ipFamilies`); an error blocks IPv6 only.
    pub ipv6: Result<Ipv6Egress, TargetError>,
}

impl Member {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The UID of its VM configuration, unless that is being removed (nothing is provisioned
    /// for a gateway on its way out).
    pub fn live_vm_uid(&self) -> Option<&str> {
        self.vm_uid.as_deref().filter(|_| !self.removing_vm)
    }
}

/// The pool's members and the SGCs it should wait for.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// Members, oldest LB configuration first (the port-allocation order).
    pub members: Vec<Member>,
    /// `namespace/name` of SGCs of this pool whose internal objects are not complete yet.
    pub pending: Vec<String>,
}

fn controller_uid<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

fn same_ns_name<A: kube::Resource, B: kube::Resource>(a: &A, b: &B) -> bool {
    a.meta().namespace == b.meta().namespace && a.meta().name == b.meta().name
}

/// Gathers the members of the pool known by `aliases` (its keys by node pool name and by
/// scale set).
pub fn gather(
    aliases: &[PoolKey],
    sgcs: &[Arc<StaticGatewayConfiguration>],
    lbs: &[Arc<GatewayLBConfiguration>],
    vms: &[Arc<GatewayVMConfiguration>],
    subscription: &str,
) -> Gathered {
    let in_pool = |k: Option<PoolKey>| k.is_some_and(|k| aliases.contains(&k));
    let mut out = Gathered::default();
    let all_lbs = lbs;
    let mut lbs: Vec<&Arc<GatewayLBConfiguration>> = lbs
        .iter()
        .filter(|lb| in_pool(pool_key(&lb.spec.target)))
        .collect();
    lbs.sort_by(|a, b| {
        (
            a.meta().creation_timestamp.as_ref().map(|t| t.0),
            a.namespace(),
            a.name_any(),
        )
            .cmp(&(
                b.meta().creation_timestamp.as_ref().map(|t| t.0),
                b.namespace(),
                b.name_any(),
            ))
    });
    for lb in lbs {
        let lb_uid = lb.uid().unwrap_or_default();
        let sgc = sgcs
            .iter()
            .find(|s| same_ns_name(s.as_ref(), lb.as_ref()))
            .cloned();
        let sgc_uid = controller_uid(lb.as_ref())
            .or_else(|| sgc.as_ref().and_then(|s| s.uid()))
            .unwrap_or_default();
        let vm = vms
            .iter()
            .find(|v| {
                same_ns_name(v.as_ref(), lb.as_ref())
                    && controller_uid(v.as_ref()).is_none_or(|u| u == lb_uid)
            })
            .cloned();
        let removing_lb = lb.meta().deletion_timestamp.is_some();
        let removing_vm = removing_lb
            || vm
                .as_ref()
                .is_some_and(|v| v.meta().deletion_timestamp.is_some());
        let member = Member {
            namespace: lb.namespace().unwrap_or_default(),
            name: lb.name_any(),
            lb_uid,
            sgc_uid,
            vm_uid: vm.as_ref().and_then(|v| v.uid()),
            removing_lb,
            removing_vm,
            target: validate(&lb.spec.target, subscription),
            ipv6: validate_ipv6(&lb.spec.target, subscription),
            sgc: sgc.clone(),
            vm: vm.clone(),
            lb: lb.clone(),
        };
        if !removing_lb {
            let vm_behind = vm.as_ref().is_none_or(|v| v.spec.target != lb.spec.target);
            // The pool and prefix length of a provisioned gateway never follow the spec.
            let lb_behind = sgc.as_ref().is_some_and(|s| {
                s.meta().deletion_timestamp.is_none()
                    && crate::target::pinned_target(&s.spec.target, Some(&lb.spec.target)).0
                        != lb.spec.target
            });
            if vm_behind || lb_behind {
                out.pending.push(member.key());
            }
        }
        out.members.push(member);
    }
    let waiting = waiting_sgcs(aliases, sgcs, all_lbs, &out.members, subscription);
    out.pending.extend(waiting);
    out
}

/// `namespace/name` of the valid, live SGCs of the pool that have no LB configuration yet (an
/// SGC whose spec names another pool than its LB configuration stays with that one).
fn waiting_sgcs(
    aliases: &[PoolKey],
    sgcs: &[Arc<StaticGatewayConfiguration>],
    lbs: &[Arc<GatewayLBConfiguration>],
    members: &[Member],
    subscription: &str,
) -> Vec<String> {
    sgcs.iter()
        .filter(|sgc| sgc.meta().deletion_timestamp.is_none())
        .filter(|sgc| !lbs.iter().any(|lb| same_ns_name(lb.as_ref(), sgc.as_ref())))
        .filter(|sgc| {
            validate(&sgc.spec.target, subscription).is_ok_and(|v| aliases.contains(&v.pool))
        })
        .filter(|sgc| {
            !members.iter().any(|m| {
                m.namespace == sgc.namespace().unwrap_or_default()
                    && m.name == sgc.name_any()
                    && Some(&m.sgc_uid) == sgc.uid().as_ref()
            })
        })
        .map(|sgc| format!("{}/{}", sgc.namespace().unwrap_or_default(), sgc.name_any()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::pool::plan::fixtures::{SUB, lb, sgc, vm};

    const POOL: &str = "{gatewayNodepoolName: gwpool}";
    const VMSS: &str =
        "{gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw-vmss, publicIpPrefixSize: 31}}";

    fn aliases() -> Vec<PoolKey> {
        vec![
            PoolKey::Nodepool("gwpool".into()),
            PoolKey::Vmss {
                resource_group: "rg".into(),
                name: "gw-vmss".into(),
            },
        ]
    }

    #[test]
    fn complete_chains_of_both_aliases_are_members_and_nothing_is_pending() {
        let g = gather(
            &aliases(),
            &[sgc("a", "s1", POOL), sgc("b", "s2", VMSS)],
            &[lb("a", "l1", "s1", POOL, ""), lb("b", "l2", "s2", VMSS, "")],
            &[vm("a", "v1", "l1", POOL, ""), vm("b", "v2", "l2", VMSS, "")],
            SUB,
        );
        assert!(g.pending.is_empty(), "{:?}", g.pending);
        assert_eq!(g.members.len(), 2);
        let a = &g.members[0];
        assert_eq!((a.lb_uid.as_str(), a.sgc_uid.as_str()), ("l1", "s1"));
        assert_eq!(a.vm_uid.as_deref(), Some("v1"));
        assert!(!a.removing_lb && !a.removing_vm);
    }

    #[test]
    fn sgcs_without_internal_objects_are_pending_and_other_pools_ignored() {
        let other = "{gatewayNodepoolName: otherpool}";
        let g = gather(
            &aliases(),
            &[
                sgc("a", "s1", POOL),
                sgc("b", "s2", POOL),
                sgc("c", "s3", other),
            ],
            &[lb("a", "l1", "s1", POOL, "")],
            &[],
            SUB,
        );
        assert_eq!(g.pending, vec!["ns/a".to_string(), "ns/b".to_string()]);
        assert_eq!(g.members.len(), 1);
    }

    #[test]
    fn invalid_sgcs_are_not_waited_for() {
        let g = gather(
            &aliases(),
            &[sgc(
                "x",
                "s9",
                "{gatewayNodepoolName: gwpool, provisionPublicIps: false, publicIpPrefixId: /x}",
            )],
            &[],
            &[],
            SUB,
        );
        assert!(g.pending.is_empty());
    }

    #[test]
    fn deleting_objects_mark_what_is_removed() {
        let del = "deletionTimestamp: '2024-01-01T00:00:00Z', finalizers: [x],";
        let g = gather(
            &aliases(),
            &[],
            &[
                lb("a", "l1", "s1", POOL, del),
                lb("b", "l2", "s2", POOL, ""),
            ],
            &[
                vm("a", "v1", "l1", POOL, ""),
                vm("b", "v2", "l2", POOL, del),
            ],
            SUB,
        );
        assert!(g.members[0].removing_lb && g.members[0].removing_vm);
        assert!(!g.members[1].removing_lb && g.members[1].removing_vm);
        assert!(g.pending.is_empty());
    }
}
