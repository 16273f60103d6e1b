//! In-use protection of StaticGatewayConfigurations, as `kubernetes.io/pvc-protection` is for
//! PersistentVolumeClaims: a deleted SGC that pods still use keeps its Azure state (and its
//! pods their egress) until the last one stops using it. The SGC controller adds the finalizer
//! [`IN_USE_FINALIZER`] with its own and starts the cleanup only after this controller removed
//! it. Here: `status.podCount` and the condition `InUse` of every SGC, a Warning Event when a
//! requested deletion is blocked, a Normal one when it may proceed, and the release of the
//! finalizer. It never deletes anything and never touches Azure.
//!
//! "Uses" means "has a PodEndpoint naming the SGC in its namespace": the CNI manager writes
//! one per pod whose tunnel it registered and deletes it at CNI DEL, and the garbage collector
//! deletes it with its pod, so it exists exactly while a pod can send through the gateway.
//! Annotated pods without one (not started yet, or their ADD failed) have no tunnel to lose;
//! the CNI manager refuses new ADDs for an SGC being deleted.
//!
//! Phases: observe (reflector caches of SGCs and PodEndpoints) → plan (`plan`, pure) → apply
//! (per SGC: status by server-side apply with its own field manager, then the Event, then the
//! finalizer) → metrics. Passes are debounced; a failed write schedules another pass.

pub mod plan;

use std::future::Future;
use std::time::{Duration, Instant};

use egress_api::constants::{API_VERSION, FIELD_MANAGER_IN_USE, IN_USE_FINALIZER};
use egress_api::{PodEndpoint, StaticGatewayConfiguration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};

use crate::context::Context;
use crate::error::KubeError;
use crate::finalizers;
use crate::passes;

/// Metric label of this controller.
pub const CONTROLLER: &str = "in-use-protection";
/// A pass at least this often (repairs a status someone else overwrote).
const TICK: Duration = Duration::from_secs(60);
/// After a failed write, the next pass.
const RETRY: Duration = Duration::from_secs(2);
/// SGCs handled at once.
const CONCURRENCY: usize = 8;

/// Runs until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let (sgcs, sgc_w) = reflector::store::<StaticGatewayConfiguration>();
    let (pes, pe_w) = reflector::store::<PodEndpoint>();
    let changes = futures::stream::select_all([
        passes::watch_into(sgc_w, Api::all(client.clone())),
        passes::watch_into(pe_w, Api::all(client)),
    ]);
    let ready = async {
        let _ = futures::join!(sgcs.wait_until_ready(), pes.wait_until_ready());
    };
    let timing = passes::Timing {
        debounce: ctx.config.debounce,
        tick: TICK,
        retry: RETRY,
    };
    passes::run(CONTROLLER, changes, ready, timing, shutdown, || {
        pass(&ctx, &sgcs, &pes)
    })
    .await;
}

/// One pass; false when a write failed (logged).
async fn pass(
    ctx: &Context,
    sgcs: &Store<StaticGatewayConfiguration>,
    pes: &Store<PodEndpoint>,
) -> bool {
    let started = Instant::now();
    let (sgc_list, pe_list) = (sgcs.state(), pes.state());
    let sgc_refs: Vec<&StaticGatewayConfiguration> = sgc_list.iter().map(AsRef::as_ref).collect();
    let pe_refs: Vec<&PodEndpoint> = pe_list.iter().map(AsRef::as_ref).collect();
    let actions = plan::plan(&sgc_refs, &pe_refs, &Time(Timestamp::now()));
    passes::apply_all(ctx, CONTROLLER, started, actions, CONCURRENCY, |a| {
        apply(ctx, a)
    })
    .await
}

/// Applies one SGC's action: status first (so the Event and the release follow what users can
/// read), then the Event, then the finalizer.
async fn apply(ctx: &Context, a: plan::SgcAction) -> Result<(), KubeError> {
    let api: Api<StaticGatewayConfiguration> = Api::namespaced(ctx.client.clone(), &a.namespace);
    let key = format!("{}/{}", a.namespace, a.name);
    if let Some((count, condition)) = &a.status {
        let body = serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "StaticGatewayConfiguration",
            "metadata": {"name": a.name},
            "status": {"podCount": count, "conditions": [condition]},
        });
        let params = PatchParams::apply(FIELD_MANAGER_IN_USE).force();
        match api
            .patch_status(&a.name, &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => {}
            // Gone meanwhile: nothing left to protect.
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => {
                return Err(KubeError::new(
                    format!("write the in-use status of {key}"),
                    e,
                ));
            }
        }
    }
    if let Some(ev) = a.event {
        ctx.event(&a.reference, ev.warning, ev.reason, "Delete", ev.note)
            .await;
    }
    if a.release {
        finalizers::remove(&api, &a.name, IN_USE_FINALIZER)
            .await
            .map_err(|e| KubeError::new(format!("remove the in-use finalizer of {key}"), e))?;
        tracing::info!(sgc = %key, "no pod uses the gateway: its deletion proceeds");
    }
    Ok(())
}
