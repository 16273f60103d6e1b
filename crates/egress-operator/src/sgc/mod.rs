//! The StaticGatewayConfiguration controller: validates the spec, keeps the gateway key pair
//! in its Secret, keeps the owned GatewayLBConfiguration in step with the spec, and writes the
//! SGC status (endpoint, key, `KeyReady`, `Ready`). It never calls Azure: that is the pool
//! controller's job. On deletion it removes the LB configuration (whose finalizer waits for
//! Azure cleanup) and then the Secret, and only then releases its own finalizer.

pub mod apply;
pub mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use egress_api::constants::{
    FIELD_MANAGER_SGC, OWNING_SGC_NAME_LABEL, OWNING_SGC_NAMESPACE_LABEL, SGC_FINALIZER,
};
use egress_api::{GatewayLBConfiguration, StaticGatewayConfiguration};
use egress_runtime::error_chain;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::context::Context;
use crate::error::{Category, kube_retry_after};
use crate::finalizers;
use crate::target::validate;

use self::status::{KeyState, Observed};

/// Metric label of this controller.
pub const CONTROLLER: &str = "static-gateway-configuration";

/// A failed step of the SGC controller.
#[derive(Debug, thiserror::Error)]
pub enum SgcError {
    /// A Kubernetes call failed.
    #[error("failed to {action}")]
    Kube {
        /// What was being done.
        action: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

impl SgcError {
    pub(crate) fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    /// What to do next.
    pub fn category(&self) -> Category {
        match self {
            Self::Kube { source, .. } => Category::of_kube(source),
        }
    }
}

/// Runs the controller until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ctx.config.namespace);
    Controller::new(
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
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, Arc::new(ctx))
    .for_each(|_| async {})
    .await;
}

async fn reconcile(
    sgc: Arc<StaticGatewayConfiguration>,
    ctx: Arc<Context>,
) -> Result<Action, SgcError> {
    let started = Instant::now();
    let result = reconcile_inner(&sgc, &ctx).await;
    let category = result.as_ref().err().map(SgcError::category);
    ctx.metrics.record(CONTROLLER, started.elapsed(), category);
    match &result {
        Ok(_) => ctx.reset_retries(&retry_key(&sgc)),
        Err(e) => {
            tracing::warn!(sgc = %format!("{}/{}", sgc.namespace().unwrap_or_default(), sgc.name_any()), error = %error_chain(e), "reconcile failed");
            let reason = category.map_or("ReconcileError", Category::event_reason);
            ctx.event(
                &sgc.object_ref(&()),
                true,
                reason,
                "Reconcile",
                error_chain(e),
            )
            .await;
        }
    }
    result
}

fn retry_key(sgc: &StaticGatewayConfiguration) -> String {
    format!("{CONTROLLER}/{}", sgc.uid().unwrap_or_default())
}

fn error_policy(sgc: Arc<StaticGatewayConfiguration>, e: &SgcError, ctx: Arc<Context>) -> Action {
    let retry_after = match e {
        SgcError::Kube { source, .. } => kube_retry_after(source),
    };
    match ctx.retry_delay(&retry_key(&sgc), e.category(), retry_after) {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    }
}

async fn reconcile_inner(
    sgc: &StaticGatewayConfiguration,
    ctx: &Context,
) -> Result<Action, SgcError> {
    let ns = sgc.namespace().unwrap_or_default();
    let name = sgc.name_any();
    let api: Api<StaticGatewayConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    if sgc.meta().deletion_timestamp.is_some() {
        if sgc.finalizers().iter().any(|f| f == SGC_FINALIZER) && apply::cleanup(ctx, sgc).await? {
            finalizers::remove(&api, &name, SGC_FINALIZER)
                .await
                .map_err(|e| SgcError::kube(format!("remove the finalizer of {ns}/{name}"), e))?;
        }
        // The LB configuration disappearing triggers the next pass (owned objects are watched).
        return Ok(Action::await_change());
    }
    finalizers::add(&api, sgc, SGC_FINALIZER)
        .await
        .map_err(|e| SgcError::kube(format!("add the finalizer to {ns}/{name}"), e))?;

    let lbs: Api<GatewayLBConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    let lb = lbs
        .get_opt(&name)
        .await
        .map_err(|e| SgcError::kube(format!("read GatewayLBConfiguration {ns}/{name}"), e))?;
    let mut obs = Observed {
        sgc,
        invalid: None,
        key: None,
        lb_status: lb.as_ref().and_then(|l| l.status.as_ref()),
    };
    match validate(&sgc.spec.target, &ctx.config.azure.subscription_id) {
        Err(e) => obs.invalid = Some((e.reason(), e.to_string())),
        Ok(_) => {
            let key = apply::ensure_key(ctx, sgc).await?;
            let usable = matches!(key, KeyState::Ready { .. });
            obs.key = Some(key);
            if usable {
                apply::ensure_lb_config(ctx, sgc, lb.as_ref()).await?;
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
        SgcError::kube(
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
