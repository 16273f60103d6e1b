//! Kubernetes writes of a pool pass: the LB and VM configurations' status and the pool's
//! conditions on each SGC (`LoadBalancerReady`, `PrefixReady`, `GatewayVMsReady`, `IPv6Ready`)
//! with its `egressIpv6Prefix` as `pool::status` computed them, all by server-side apply with the pool's field manager and
//! skipped when unchanged; Events when a condition changes; and, after Azure cleanup,
//! releasing the VM and LB configurations.

use egress_api::conditions::{condition, set_condition};
use egress_api::constants::{API_VERSION, LB_CONFIG_FINALIZER, VM_CONFIG_FINALIZER};
use egress_api::{GatewayLBConfiguration, GatewayVMConfiguration, StaticGatewayConfiguration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::context::Context;
use crate::finalizers;
use crate::pool::error::PoolError;
use crate::pool::plan::members::Member;
use crate::pool::status::{IPV6_READY, MemberStatus, PoolCondition};

/// Field manager of every write of the pool reconciler.
pub const FIELD_MANAGER_POOL: &str = "egress-operator/gateway-pool";

/// Server-side applies `status` (only the fields given) to the member's object of kind `K`.
/// Returns `false` when the object is already gone: not an error (its deletion is what the pass
/// is catching up with).
async fn apply_status<K>(
    ctx: &Context,
    m: &Member,
    what: &str,
    status: serde_json::Value,
) -> Result<bool, PoolError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &m.namespace);
    let body = json!({"apiVersion": API_VERSION, "kind": kind,
        "metadata": {"name": m.name}, "status": status});
    let params = PatchParams::apply(FIELD_MANAGER_POOL).force();
    match api
        .patch_status(&m.name, &params, &Patch::Apply(body))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(PoolError::kube(
            format!("write the {what} of {kind} {}", m.key()),
            e,
        )),
    }
}

/// Writes what the pass computed for gateway `m`: after its Azure resources are gone, releases
/// its configurations first; then its VM and LB configuration status and its SGC conditions.
pub async fn write_member(
    ctx: &Context,
    m: &Member,
    status: Option<MemberStatus>,
) -> Result<(), PoolError> {
    if m.removing_lb || m.removing_vm {
        release(ctx, m).await?;
    }
    let Some(status) = status else {
        return Ok(());
    };
    if let (Some(vm), Some(new)) = (&m.vm, status.vm) {
        write_status::<GatewayVMConfiguration, _>(ctx, m, vm.status.as_ref(), new).await?;
    }
    if let Some(new) = status.lb {
        write_status::<GatewayLBConfiguration, _>(ctx, m, m.lb.status.as_ref(), new).await?;
    }
    write_conditions(ctx, m, &status.conditions, status.sgc_ipv6_prefix).await
}

/// Writes a configuration's status if it differs from `current`.
async fn write_status<K, S>(
    ctx: &Context,
    m: &Member,
    current: Option<&S>,
    status: S,
) -> Result<(), PoolError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: PartialEq + serde::Serialize,
{
    if current != Some(&status) {
        apply_status::<K>(ctx, m, "status", json!(status)).await?;
    }
    Ok(())
}

/// Sets the pool's conditions on the member's SGC, and its `egressIpv6Prefix` unless
/// `ipv6_prefix` is `None` (skipped when nothing changes), and publishes an Event for each
/// condition whose status or reason changed. `IPv6Ready` is removed when not wanted (the
/// gateway has no IPv6 any more).
pub async fn write_conditions(
    ctx: &Context,
    m: &Member,
    wanted: &[PoolCondition],
    ipv6_prefix: Option<Option<String>>,
) -> Result<(), PoolError> {
    let Some(sgc) = &m.sgc else { return Ok(()) };
    if sgc.meta().deletion_timestamp.is_some() {
        return Ok(());
    }
    let before = sgc
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut merged = before.clone();
    let now = Time(Timestamp::now());
    let current_prefix = sgc
        .status
        .as_ref()
        .and_then(|s| s.egress_ipv6_prefix.clone());
    let ipv6_prefix = ipv6_prefix.unwrap_or_else(|| current_prefix.clone());
    let mut changed = ipv6_prefix != current_prefix;
    if !wanted.iter().any(|w| w.type_ == IPV6_READY) {
        let n = merged.len();
        merged.retain(|c| c.type_ != IPV6_READY);
        changed |= merged.len() != n;
    }
    for c in wanted {
        changed |= set_condition(
            &mut merged,
            condition(
                c.type_,
                c.ok,
                &c.reason,
                c.message.clone(),
                sgc.meta().generation,
                now.clone(),
            ),
        );
    }
    if !changed {
        return Ok(());
    }
    let ours: Vec<_> = merged
        .iter()
        .filter(|c| wanted.iter().any(|w| w.type_ == c.type_))
        .cloned()
        .collect();
    let mut body = json!({"conditions": ours});
    if let Some(p) = ipv6_prefix {
        body["egressIpv6Prefix"] = json!(p);
    }
    if !apply_status::<StaticGatewayConfiguration>(ctx, m, "conditions", body).await? {
        return Ok(());
    }
    let reference = sgc.object_ref(&());
    for c in wanted {
        let old = before.iter().find(|o| o.type_ == c.type_);
        let flipped = old.is_none_or(|o| (o.status == "True") != c.ok || o.reason != c.reason);
        if flipped {
            ctx.event(&reference, !c.ok, &c.reason, c.type_, c.message.clone())
                .await;
        }
    }
    Ok(())
}

/// After the member's Azure resources are gone: deletes its VM configuration and releases the
/// VM and (when the LB configuration is being deleted) LB finalizers, in chain order.
pub async fn release(ctx: &Context, m: &Member) -> Result<(), PoolError> {
    let vms: Api<GatewayVMConfiguration> = Api::namespaced(ctx.client.clone(), &m.namespace);
    if let Some(vm) = &m.vm {
        if vm.meta().deletion_timestamp.is_none() {
            match vms.delete(&vm.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(PoolError::kube(
                        format!("delete GatewayVMConfiguration {}", m.key()),
                        e,
                    ));
                }
            }
        }
        finalizers::remove(&vms, &vm.name_any(), VM_CONFIG_FINALIZER)
            .await
            .map_err(|e| {
                PoolError::kube(
                    format!("remove the finalizer of GatewayVMConfiguration {}", m.key()),
                    e,
                )
            })?;
    }
    if m.removing_lb {
        let lbs: Api<GatewayLBConfiguration> = Api::namespaced(ctx.client.clone(), &m.namespace);
        finalizers::remove(&lbs, &m.name, LB_CONFIG_FINALIZER)
            .await
            .map_err(|e| {
                PoolError::kube(
                    format!("remove the finalizer of GatewayLBConfiguration {}", m.key()),
                    e,
                )
            })?;
    }
    Ok(())
}
