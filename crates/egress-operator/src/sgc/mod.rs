//! The StaticGatewayConfiguration controller: validates the spec, keeps the gateway key pair
//! in its Secret, keeps the owned GatewayLBConfiguration in step with the spec, and writes the
//! SGC status (endpoint, key, `KeyReady`, `Ready`). It never calls Azure: that is the pool
//! controller's job. It adds its finalizer and the in-use protection's together. On deletion
//! it waits until `in_use` released the in-use finalizer (no pod uses the gateway), then
//! removes the LB configuration (whose finalizer waits for Azure cleanup) and the Secret, and
//! only then releases its own finalizer.

pub mod apply;
pub mod status;

use std::future::Future;
use std::sync::Arc;

use egress_api::constants::{
    FIELD_MANAGER_SGC, IN_USE_FINALIZER, OWNING_SGC_NAME_LABEL, OWNING_SGC_NAMESPACE_LABEL,
    SGC_FINALIZER,
};
use egress_api::{GatewayLBConfiguration, StaticGatewayConfiguration};
use egress_runtime::error_chain;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::context::Context;
use crate::controller::{self, ReconcileError};
use crate::error::KubeError;
use crate::finalizers;
use crate::target::{exclude_cidrs_problem, pinned_target, validate};

use self::status::{KeyState, Observed};

/// Metric label of this controller.
pub const CONTROLLER: &str = "static-gateway-configuration";

/// A failed step of the SGC controller: it only calls Kubernetes.
pub type SgcError = KubeError;

/// Runs the controller until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ctx.config.namespace);
    let sgcs = Controller::new(
        Api::<StaticGatewayConfiguration>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<GatewayLBConfiguration>::all(client),
        watcher::Config::default(),
    )
    .watches(
        secrets,
        watcher::Config::default().labels(OWNING_SGC_NAME_LABEL),
        |s: Secret| {
            let labels = s.labels();
            Some(
                ObjectRef::new(labels.get(OWNING_SGC_NAME_LABEL)?)
                    .within(labels.get(OWNING_SGC_NAMESPACE_LABEL)?),
            )
        },
    )
    .graceful_shutdown_on(shutdown);
    controller::run_objects(sgcs, CONTROLLER, ctx, reconcile).await;
}

async fn reconcile(
    sgc: Arc<StaticGatewayConfiguration>,
    ctx: Arc<Context>,
) -> Result<Action, SgcError> {
    let result = reconcile_inner(&sgc, &ctx).await;
    if let Err(e) = &result {
        // The SGC is what users look at: the failure shows up on it as a Warning Event.
        let reason = e.category().event_reason();
        ctx.event(
            &sgc.object_ref(&()),
            true,
            reason,
            "Reconcile",
            error_chain(e),
        )
        .await;
    }
    result
}

async fn reconcile_inner(
    sgc: &StaticGatewayConfiguration,
    ctx: &Context,
) -> Result<Action, SgcError> {
    let ns = sgc.namespace().unwrap_or_default();
    let name = sgc.name_any();
    let api: Api<StaticGatewayConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    if sgc.meta().deletion_timestamp.is_some() {
        // In-use protection comes first: while pods use the gateway its Azure state must stay.
        // `in_use` removes that finalizer once no PodEndpoint names the SGC; the change of
        // finalizers is an SGC event, which brings the cleanup here.
        if sgc.finalizers().iter().any(|f| f == IN_USE_FINALIZER) {
            return Ok(Action::await_change());
        }
        if sgc.finalizers().iter().any(|f| f == SGC_FINALIZER) && apply::cleanup(ctx, sgc).await? {
            finalizers::remove(&api, &name, SGC_FINALIZER)
                .await
                .map_err(|e| SgcError::new(format!("remove the finalizer of {ns}/{name}"), e))?;
        }
        // The LB configuration disappearing triggers the next pass (owned objects are watched).
        return Ok(Action::await_change());
    }
    // Both before anything is provisioned: no pod can use a gateway without its protection.
    finalizers::add_all(&api, sgc, &[SGC_FINALIZER, IN_USE_FINALIZER])
        .await
        .map_err(|e| SgcError::new(format!("add the finalizers to {ns}/{name}"), e))?;

    let lbs: Api<GatewayLBConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    let lb = lbs
        .get_opt(&name)
        .await
        .map_err(|e| SgcError::new(format!("read GatewayLBConfiguration {ns}/{name}"), e))?;
    // The pool and prefix length stay as provisioned (the LB configuration's copy).
    let provisioned = lb
        .as_ref()
        .filter(|l| l.meta().deletion_timestamp.is_none())
        .map(|l| &l.spec.target);
    let (target, pinned) = pinned_target(&sgc.spec.target, provisioned);
    let unsatisfied = exclude_cidrs_problem(&sgc.spec)
        .map(|m| ("InvalidExcludeCidrs", m))
        .or_else(|| (!pinned.is_empty()).then(|| ("ImmutableFieldChanged", pinned.join("; "))));
    let mut obs = Observed {
        sgc,
        invalid: None,
        unsatisfied,
        key: None,
        lb_status: lb.as_ref().and_then(|l| l.status.as_ref()),
    };
    match validate(&target, &ctx.config.azure.subscription_id) {
        Err(e) => obs.invalid = Some((e.reason(), e.to_string())),
        Ok(_) => {
            let key = apply::ensure_key(ctx, sgc).await?;
            let usable = matches!(key, KeyState::Ready { .. });
            obs.key = Some(key);
            if usable {
                apply::ensure_lb_config(ctx, sgc, &target, lb.as_ref()).await?;
            }
        }
    }
    write_status(ctx, &api, &obs).await?;
    Ok(
        if obs.invalid.is_some() || matches!(obs.key, Some(KeyState::Broken(_))) {
            // Only a change of the spec (or the Secret) can help: no retry loop.
            Action::await_change()
        } else {
            Action::requeue(ctx.config.resync_interval)
        },
    )
}

async fn write_status(
    ctx: &Context,
    api: &Api<StaticGatewayConfiguration>,
    obs: &Observed<'_>,
) -> Result<(), SgcError> {
    let sgc = obs.sgc;
    let desired = status::desired(obs, Time(Timestamp::now()));
    let current = sgc.status.clone().unwrap_or_default();
    if desired == current {
        return Ok(());
    }
    let name = sgc.name_any();
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER_SGC).force(),
        &Patch::Apply(status::apply_body(sgc, &desired)),
    )
    .await
    .map_err(|e| {
        SgcError::new(
            format!(
                "write the status of {}/{name}",
                sgc.namespace().unwrap_or_default()
            ),
            e,
        )
    })?;
    let was = current.conditions.iter().find(|c| c.type_ == "Ready");
    let now = desired.conditions.iter().find(|c| c.type_ == "Ready");
    if let Some(now) = now
        && was.is_none_or(|w| w.status != now.status || w.reason != now.reason)
        && (now.status == "True" || now.reason != "Provisioning")
    {
        ctx.event(
            &sgc.object_ref(&()),
            now.status != "True",
            &now.reason,
            "Provision",
            now.message.clone(),
        )
        .await;
    }
    Ok(())
}
