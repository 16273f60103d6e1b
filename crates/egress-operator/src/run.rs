//! Starting and stopping the whole operator: HTTP endpoints first, then (after winning the
//! leader Lease, when enabled) the five controllers, all stopped together on shutdown or when
//! leadership is lost. Nothing here is reconcile logic.

use std::future::Future;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::context::Context;
use crate::http::{self, Readiness};

/// Leader election settings.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Lease name (the original's is `0a299682.microsoft.com`).
    pub lease_name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// Seconds a lease is valid after its last renewal.
    pub duration_seconds: u64,
    /// Seconds before expiry the holder renews.
    pub grace_seconds: u64,
}

/// How to run.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Lease-based leader election; `None` runs the controllers at once.
    pub leader_election: Option<LeaderElection>,
    /// Listeners serving `/healthz`, `/readyz`, `/metrics`.
    pub listeners: Vec<TcpListener>,
}

/// Why the operator stopped other than by request.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Lease could not be set up or watched.
    #[error("failed to run leader election")]
    LeaderElection(#[source] LeaseManagerError),
    /// Another replica took over.
    #[error("lost the leader lease; stopping so that the new leader runs alone")]
    LostLeadership,
}

async fn signal(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Every controller, until `stop` turns true.
async fn controllers(ctx: &Context, stop: &watch::Receiver<bool>) {
    tokio::join!(
        crate::sgc::run(ctx.clone(), signal(stop.clone())),
        crate::vm_config_chain::run(ctx.clone(), signal(stop.clone())),
        crate::pool::run(ctx.clone(), signal(stop.clone())),
        crate::pod_endpoint_status::run(ctx.clone(), signal(stop.clone())),
        crate::in_use::run(ctx.clone(), signal(stop.clone())),
        crate::selector_conflicts::run(ctx.clone(), signal(stop.clone())),
    );
}

/// Runs until `shutdown` completes (then stops gracefully) or leadership is lost.
pub async fn run(
    ctx: Context,
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Readiness::default();
    for l in opts.listeners {
        tracing::info!(addr = ?http::local(&l), "serving /healthz, /readyz, /metrics");
        tokio::spawn(http::serve(
            l,
            ctx.metrics.clone(),
            ready.clone(),
            signal(stop_rx.clone()),
        ));
    }
    futures::pin_mut!(shutdown);

    let mut leader = None;
    if let Some(le) = &opts.leader_election {
        let manager = LeaseManagerBuilder::new(ctx.client.clone(), le.lease_name.clone())
            .with_namespace(le.namespace.clone())
            .with_identity(le.identity.clone())
            .with_duration(le.duration_seconds)
            .with_grace(le.grace_seconds)
            .build()
            .await
            .map_err(RunError::LeaderElection)?;
        let (mut rx, task) = manager.watch().await;
        // A standby replica is ready: it serves and waits.
        ready.set(true);
        tracing::info!(lease = %le.lease_name, identity = %le.identity, "waiting for the leader lease");
        // `Some(true)`: won; `Some(false)`: the lease task ended; `None`: shutdown first.
        let won = tokio::select! {
            r = rx.wait_for(|l| *l) => Some(r.is_ok()),
            () = &mut shutdown => None,
        };
        if won != Some(true) {
            let _ = stop_tx.send(true);
            drop(rx);
            let ended = task.await;
            return match (won, ended) {
                (None, _) => Ok(()),
                (_, Ok(Err(e))) => Err(RunError::LeaderElection(e)),
                _ => Err(RunError::LostLeadership),
            };
        }
        tracing::info!("acquired the leader lease");
        leader = Some((rx, task));
    }
    ready.set(true);

    let controllers = controllers(&ctx, &stop_rx);
    futures::pin_mut!(controllers);
    let lost = async {
        match &mut leader {
            Some((rx, _)) => {
                let _ = rx.wait_for(|l| !*l).await;
            }
            None => futures::future::pending::<()>().await,
        }
    };
    let mut lost_leadership = false;
    tokio::select! {
        () = &mut shutdown => tracing::info!("shutting down"),
        () = lost => { lost_leadership = true; tracing::error!("lost the leader lease"); }
        () = &mut controllers => {}
    }
    let _ = stop_tx.send(true);
    controllers.await;
    if let Some((rx, task)) = leader {
        // Closing the channel makes the lease task release the lease.
        drop(rx);
        let _ = task.await;
    }
    if lost_leadership {
        Err(RunError::LostLeadership)
    } else {
        Ok(())
    }
}
