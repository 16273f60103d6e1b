//! The PodEndpoint status controller: sums up, per PodEndpoint, what the gateway nodes of its
//! gateway published in their GatewayStatuses (programmed, missing from the device, refused
//! with the reason) into `status.{phase, programmed, reason, message, gateways}`, and exports
//! each gateway's node health (`egress_operator_gateway_nodes`, `..._gateway_healthy_nodes`).
//!
//! Why here and not in the daemons: N gateway nodes writing each PodEndpoint would cost N
//! writes per pod; the daemons' GatewayStatus writes are already batched (one per node per
//! interval), and one writer turns them into one PodEndpoint write per change of the summary
//! (usually one per pod, as the nodes program a new pod within one status interval of each
//! other and passes are debounced). Passes also run every `TICK`, so a daemon that stopped
//! writing (no events) turns its node unhealthy in the metrics.
//!
//! Phases: observe (reflector caches of PodEndpoints, GatewayVMConfigurations and the release
//! namespace's GatewayStatuses) → plan (`plan`, pure) → apply (server-side apply of each
//! changed status, 8 at a time) → metrics.

pub mod plan;

use std::future::Future;
use std::time::{Duration, Instant};

use egress_api::constants::{API_VERSION, FIELD_MANAGER_POD_ENDPOINT_STATUS};
use egress_api::{GatewayStatus, GatewayVMConfiguration, PodEndpoint};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};

use crate::context::Context;
use crate::error::{Category, KubeError};
use crate::passes;

/// Metric label of this controller.
pub const CONTROLLER: &str = "pod-endpoint-status";
/// Wait for more changes before a pass.
const DEBOUNCE: Duration = Duration::from_millis(1500);
/// A pass at least this often (heartbeats go stale without any event).
const TICK: Duration = Duration::from_secs(15);
/// Status writes in flight at once.
const CONCURRENCY: usize = 8;

/// Runs until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let (pes, pe_w) = reflector::store::<PodEndpoint>();
    let (vms, vm_w) = reflector::store::<GatewayVMConfiguration>();
    let (gss, gs_w) = reflector::store::<GatewayStatus>();
    let changes = futures::stream::select_all([
        passes::watch_into(pe_w, Api::all(client.clone())),
        passes::watch_into(vm_w, Api::all(client.clone())),
        passes::watch_into(gs_w, Api::namespaced(client, &ctx.config.namespace)),
    ]);
    let ready = async {
        let _ = futures::join!(
            pes.wait_until_ready(),
            vms.wait_until_ready(),
            gss.wait_until_ready()
        );
    };
    let timing = passes::Timing {
        debounce: DEBOUNCE,
        tick: TICK,
        // Failed writes are logged and retried at the next tick.
        retry: TICK,
    };
    passes::run(CONTROLLER, changes, ready, timing, shutdown, || async {
        pass(&ctx, &pes, &vms, &gss).await;
        true
    })
    .await;
}

async fn pass(
    ctx: &Context,
    pes: &Store<PodEndpoint>,
    vms: &Store<GatewayVMConfiguration>,
    gss: &Store<GatewayStatus>,
) {
    let started = Instant::now();
    let (pe_list, vm_list) = (pes.state(), vms.state());
    let statuses: Vec<GatewayStatus> = gss.state().iter().map(|s| (**s).clone()).collect();
    let pe_refs: Vec<&PodEndpoint> = pe_list.iter().map(AsRef::as_ref).collect();
    let vm_refs: Vec<&GatewayVMConfiguration> = vm_list.iter().map(AsRef::as_ref).collect();
    let planned = plan::plan(&pe_refs, &vm_refs, &statuses, Timestamp::now());
    ctx.metrics.set_gateway_health(
        planned
            .health
            .iter()
            .map(|h| (h.gateway.clone(), h.nodes, h.healthy)),
    );
    let results: Vec<Result<(), KubeError>> = futures::stream::iter(planned.writes)
        .map(|w| write(ctx, w))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let failed = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .collect::<Vec<_>>();
    for e in &failed {
        tracing::warn!(error = %egress_runtime::error_chain(*e), "failed to write a PodEndpoint status");
    }
    let category = failed
        .first()
        .map(|e| crate::controller::ReconcileError::category(*e));
    ctx.metrics
        .record(CONTROLLER, started.elapsed(), category.or(None::<Category>));
}

async fn write(ctx: &Context, w: plan::Write) -> Result<(), KubeError> {
    let api: Api<PodEndpoint> = Api::namespaced(ctx.client.clone(), &w.namespace);
    let body = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": w.name},
        "status": w.status,
    });
    match api
        .patch_status(
            &w.name,
            &PatchParams::apply(FIELD_MANAGER_POD_ENDPOINT_STATUS).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile (its pod went): nothing to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(KubeError::new(
            format!("write the status of PodEndpoint {}/{}", w.namespace, w.name),
            e,
        )),
    }
}
