//! The condition `SelectorConflict` of StaticGatewayConfigurations with a `podSelector`: which
//! pods this SGC's selector and another's both select (such pods use neither: the CNI managers
//! and gateway daemons resolve pods by the same rule, `egress_api::selection`), or why the
//! selector does not parse. It never touches pods, PodEndpoints or Azure.
//!
//! Phases: observe (reflector caches of SGCs and of pod metadata, managed fields and other
//! annotations dropped: the labels and our annotation are all it reads) → plan (`plan`, pure)
//! → apply (per SGC: the one condition by server-side apply with its own field manager, so it
//! never competes with the other controllers' conditions) → metrics. Passes are debounced; a
//! failed write schedules another pass.

pub mod plan;

use std::future::Future;
use std::time::{Duration, Instant};

use egress_api::StaticGatewayConfiguration;
use egress_api::constants::{API_VERSION, FIELD_MANAGER_SELECTORS, POD_ANNOTATION};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::context::Context;
use crate::error::KubeError;
use crate::passes;

/// Metric label of this controller.
pub const CONTROLLER: &str = "selector-conflicts";
/// A pass at least this often (repairs a condition someone else overwrote).
const TICK: Duration = Duration::from_secs(60);
/// After a failed write, the next pass.
const RETRY: Duration = Duration::from_secs(2);
/// SGCs written at once.
const CONCURRENCY: usize = 8;

/// Runs until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let (sgcs, sgc_w) = reflector::store::<StaticGatewayConfiguration>();
    let (pods, pod_w) = reflector::store::<PartialObjectMeta<Pod>>();
    let pod_changes = reflector::reflector(
        pod_w,
        watcher(
            Api::<PartialObjectMeta<Pod>>::all(client.clone()),
            watcher::Config::default(),
        )
        .modify(|p| {
            // Kept: name, namespace, labels and our annotation. Other annotations (such as
            // kubectl's last-applied-configuration) can be kilobytes per pod.
            p.metadata.managed_fields = None;
            if let Some(a) = p.metadata.annotations.as_mut() {
                a.retain(|k, _| k == POD_ANNOTATION);
            }
        }),
    )
    .default_backoff()
    .map_ok(|_| ())
    .boxed();
    let changes =
        futures::stream::select_all([passes::watch_into(sgc_w, Api::all(client)), pod_changes]);
    let ready = async {
        let _ = futures::join!(sgcs.wait_until_ready(), pods.wait_until_ready());
    };
    let timing = passes::Timing {
        debounce: ctx.config.debounce,
        tick: TICK,
        retry: RETRY,
    };
    passes::run(CONTROLLER, changes, ready, timing, shutdown, || {
        pass(&ctx, &sgcs, &pods)
    })
    .await;
}

/// One pass; false when a write failed (logged).
async fn pass(
    ctx: &Context,
    sgcs: &Store<StaticGatewayConfiguration>,
    pods: &Store<PartialObjectMeta<Pod>>,
) -> bool {
    let started = Instant::now();
    let (sgc_list, pod_list) = (sgcs.state(), pods.state());
    let sgc_refs: Vec<&StaticGatewayConfiguration> = sgc_list.iter().map(AsRef::as_ref).collect();
    let pod_refs: Vec<&ObjectMeta> = pod_list.iter().map(|p| &p.metadata).collect();
    let actions = plan::plan(&sgc_refs, &pod_refs, &Time(Timestamp::now()));
    passes::apply_all(ctx, CONTROLLER, started, actions, CONCURRENCY, |a| {
        apply(ctx, a)
    })
    .await
}

/// Applies one SGC's condition (an empty list gives up the one this field manager owned).
async fn apply(ctx: &Context, a: plan::ConditionAction) -> Result<(), KubeError> {
    let api: Api<StaticGatewayConfiguration> = Api::namespaced(ctx.client.clone(), &a.namespace);
    let body = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": a.name},
        "status": {"conditions": a.condition.iter().collect::<Vec<_>>()},
    });
    let params = PatchParams::apply(FIELD_MANAGER_SELECTORS).force();
    match api
        .patch_status(&a.name, &params, &Patch::Apply(&body))
        .await
    {
        Ok(_) => {
            if let Some(c) = &a.condition {
                tracing::info!(sgc = %format!("{}/{}", a.namespace, a.name), status = %c.status, reason = %c.reason, "{}", c.message);
            }
            Ok(())
        }
        // Gone meanwhile: nothing to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(KubeError::new(
            format!(
                "write the SelectorConflict condition of {}/{}",
                a.namespace, a.name
            ),
            e,
        )),
    }
}
