//! The GatewayLBConfiguration controller: keeps its owned GatewayVMConfiguration (same name,
//! spec copied, controller owner reference, finalizer) in step, as the original's chain does.
//! The load balancer itself, statuses and finalizer release are the pool controller's work, so
//! that they can be batched per gateway pool.

use std::future::Future;
use std::sync::Arc;

use egress_api::constants::{API_VERSION, FIELD_MANAGER_LB, VM_CONFIG_FINALIZER};
use egress_api::{GatewayLBConfiguration, GatewayVMConfiguration};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::context::Context;
use crate::controller;
use crate::error::KubeError;

/// Metric label of this controller.
pub const CONTROLLER: &str = "gateway-lb-configuration";

/// A failed step of the LB configuration controller: it only calls Kubernetes.
pub type LbConfigError = KubeError;

/// Runs the controller until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let lb_configs = Controller::new(
        Api::<GatewayLBConfiguration>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<GatewayVMConfiguration>::all(client),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(shutdown);
    controller::run_objects(lb_configs, CONTROLLER, ctx, reconcile).await;
}

/// Whether `vm` already is the VM configuration `lb` wants.
fn up_to_date(lb: &GatewayLBConfiguration, vm: &GatewayVMConfiguration) -> bool {
    let uid = lb.uid().unwrap_or_default();
    vm.owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
        && vm.finalizers().iter().any(|f| f == VM_CONFIG_FINALIZER)
        && vm.spec.target == lb.spec.target
}

async fn reconcile(
    lb: Arc<GatewayLBConfiguration>,
    ctx: Arc<Context>,
) -> Result<Action, LbConfigError> {
    if lb.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = lb.namespace().unwrap_or_default();
    let name = lb.name_any();
    let api: Api<GatewayVMConfiguration> = Api::namespaced(ctx.client.clone(), &ns);
    let err = |action: &str, source| {
        LbConfigError::new(
            format!("{action} GatewayVMConfiguration {ns}/{name}"),
            source,
        )
    };
    let current = api.get_opt(&name).await.map_err(|e| err("read", e))?;
    match &current {
        // Being deleted (its owner changed, or someone deleted it): recreated once gone.
        Some(vm) if vm.meta().deletion_timestamp.is_some() => return Ok(Action::await_change()),
        Some(vm) if up_to_date(&lb, vm) => return Ok(Action::await_change()),
        _ => {}
    }
    let body = json!({
        "apiVersion": API_VERSION,
        "kind": "GatewayVMConfiguration",
        "metadata": {"name": name, "namespace": ns,
            "ownerReferences": [lb.controller_owner_ref(&())],
            "finalizers": [VM_CONFIG_FINALIZER]},
        "spec": lb.spec.target,
    });
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER_LB).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|e| err("apply", e))?;
    Ok(Action::await_change())
}
