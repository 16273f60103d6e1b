//! Wiring of a running daemon: the watches feed the programmer loop (changes batched, a
//! periodic resync, retries with backoff), beside the LB probe server, the health/metrics
//! server, the GatewayStatus writer, the counter sampler and the Event publisher.
//!
//! Shutdown (SIGTERM) depends on why (see `lifecycle`): when the node is being taken out of
//! service, every probe already answers 503 and programming continues for the drain period
//! so the load balancer has moved the flows before the node goes; otherwise it is a restart
//! (rollout, eviction of the pod alone) and the daemon stops at once, leaving the probe state
//! file answering 200 for the next instance. Either way the kernel state is left as it is:
//! tunnels keep carrying established flows and a restarted daemon adopts them unchanged.

use std::time::Duration;

use egress_dataplane::{Dataplane, NetnsRef};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::desired::HostConfig;
use crate::http::{InFlight, Readiness, health_answer, serve, serve_async};
use crate::inventory::Change;
use crate::metrics::Metrics;
use crate::node::NodeIdentity;
use crate::probe::ProbeState;
use crate::programmer::{Outputs, Programmer};
use crate::report::publish_reports;
use crate::sessions::Sessions;
use crate::status::{Limits, StatusBook};
use crate::status_write::{PublishConfig, StatusTarget, write_status};

/// Most changes folded into one programming pass.
const MAX_BATCH: usize = 4096;

/// Everything the daemon needs besides its clients and listeners.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Kubernetes node name (`MY_NODE_NAME`): the GatewayStatus name.
    pub node_name: String,
    /// The daemon's namespace (`MY_POD_NAMESPACE`): the GatewayStatus namespace.
    pub namespace: String,
    /// Names this node has in GatewayVMConfigurations (from IMDS).
    pub node: NodeIdentity,
    /// Host, namespaces, MTU, Secret namespace.
    pub host: HostConfig,
    /// Period of the full observe/plan/apply that repairs drift.
    pub resync_interval: Duration,
    /// Time probes answer 503 after SIGTERM before the daemon stops.
    pub drain: Duration,
    /// Least time between two GatewayStatus writes.
    pub status_interval: Duration,
    /// Most peer entries in the GatewayStatus.
    pub status_max_peers: usize,
    /// Period of the WireGuard counter sampling.
    pub metrics_interval: Duration,
    /// First retry delay after a failed programming pass (doubles up to `retry_max`).
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// GatewayStatus heartbeat and size, IMDS address map.
    pub publish: PublishConfig,
}

/// What the daemon does besides programming, with defaults for tests.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where to keep the probe state for the `lb-probe` keeper (`None`: nowhere).
    pub probe_state_file: Option<PathBuf>,
    /// How often the probe state file is rewritten without a change (the keeper's
    /// heartbeat).
    pub heartbeat: Duration,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        Self {
            probe_state_file: None,
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// Bound listeners (port 0 picks a free port in tests).
#[derive(Debug)]
pub struct Listeners {
    /// The LB health probe (`:8082`).
    pub probe: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics` (one or more addresses).
    pub health: Vec<TcpListener>,
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    probe: ProbeState,
    metrics: Metrics,
    readiness: Readiness,
    status: StatusBook,
    terminate: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

async fn until_set(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

impl Daemon {
    /// Starts every task, without a probe state file. Must be called inside a tokio
    /// runtime.
    pub fn start(
        client: kube::Client,
        dataplane: Dataplane,
        config: DaemonConfig,
        listeners: Listeners,
    ) -> Self {
        Self::start_with(
            client,
            dataplane,
            config,
            listeners,
            DaemonOptions::default(),
        )
    }

    /// As [`Daemon::start`], with `options`.
    pub fn start_with(
        client: kube::Client,
        dataplane: Dataplane,
        config: DaemonConfig,
        listeners: Listeners,
        options: DaemonOptions,
    ) -> Self {
        let probe = ProbeState::default();
        let metrics = Metrics::new();
        let readiness = Readiness::default();
        let status = StatusBook::default();
        let (report_tx, report_rx) = mpsc::unbounded_channel();
        let (change_tx, change_rx) = mpsc::channel::<Change>(MAX_BATCH);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (terminate, terminate_rx) = watch::channel(false);

        let mut tasks: Vec<JoinHandle<()>> =
            crate::watch::spawn_watches(&client, &config.host.secret_namespace, change_tx);
        tasks.push(tokio::spawn(crate::lifecycle::watch_node(
            Api::<Node>::all(client.clone()),
            config.node_name.clone(),
            probe.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(publish_reports(
            client.clone(),
            config.node_name.clone(),
            report_rx,
        )));
        tasks.push(tokio::spawn(write_status(
            client,
            status.clone(),
            StatusTarget {
                namespace: config.namespace.clone(),
                node_name: config.node_name.clone(),
                interval: config.status_interval,
                heartbeat: config.publish.heartbeat,
                limits: Limits {
                    max_peers: config.status_max_peers,
                    max_bytes: config.publish.max_bytes,
                },
            },
            metrics.clone(),
        )));
        tasks.push(tokio::spawn(crate::snat::sample_snat(
            NetnsRef::Named(config.host.gateway_netns.clone()),
            status.clone(),
            metrics.clone(),
            config.metrics_interval,
        )));
        if let Some(url) = config.publish.imds_url.clone() {
            tasks.push(tokio::spawn(crate::egress_ips::publish_egress_ips(
                url,
                status.clone(),
                metrics.clone(),
            )));
        }
        tasks.push(tokio::spawn(crate::counters::sample_counters(
            dataplane.clone(),
            NetnsRef::Named(config.host.gateway_netns.clone()),
            status.clone(),
            metrics.clone(),
            config.metrics_interval,
        )));
        let answer_probe = probe.clone();
        let mut servers = vec![tokio::spawn(serve(
            listeners.probe,
            move |path| answer_probe.answer(path),
            until_set(stop_rx.clone()),
        ))];
        if let Some(path) = options.probe_state_file.clone() {
            // Awaited at stop, not aborted: its last write must reach the keeper.
            servers.push(tokio::spawn(crate::probe_file::keep_written(
                probe.clone(),
                path,
                options.heartbeat,
                stop_rx.clone(),
            )));
        }
        let sessions = Sessions::new(
            dataplane.clone(),
            NetnsRef::Named(config.host.gateway_netns.clone()),
            probe.clone(),
        );
        for listener in listeners.health {
            let (m, r, s) = (metrics.clone(), readiness.clone(), sessions.clone());
            servers.push(tokio::spawn(serve_async(
                listener,
                move |path| {
                    let (m, r, s) = (m.clone(), r.clone(), s.clone());
                    async move {
                        if path.starts_with(egress_api::sessions::PATH_PREFIX) {
                            s.answer(&path).await
                        } else {
                            health_answer(&path, &m, &r)
                        }
                    }
                },
                until_set(stop_rx.clone()),
                InFlight::Finish,
            )));
        }
        let programmer = Programmer::new(
            dataplane,
            config.node.clone(),
            config.host.clone(),
            Outputs {
                probe: probe.clone(),
                status: status.clone(),
                metrics: metrics.clone(),
                reports: Some(report_tx),
            },
        );
        let main_loop = tokio::spawn(program_loop(
            programmer,
            change_rx,
            config.clone(),
            (readiness.clone(), probe.clone()),
            stop_rx.clone(),
        ));
        let supervisor = tokio::spawn(supervise(
            terminate_rx,
            config.drain,
            probe.clone(),
            readiness.clone(),
            stop_tx,
            main_loop,
            servers,
            tasks,
        ));
        Self {
            probe,
            metrics,
            readiness,
            status,
            terminate,
            supervisor,
        }
    }

    /// Begins the graceful shutdown (as SIGTERM does): a drain first when the node is being
    /// taken out of service, else a prompt stop.
    pub fn terminate(&self) {
        let _ = self.terminate.send(true);
    }

    /// Waits until the daemon has stopped (after [`Daemon::terminate`]).
    pub async fn wait(self) {
        let _ = self.supervisor.await;
    }

    /// The LB probe state.
    pub fn probe(&self) -> &ProbeState {
        &self.probe
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `/readyz` state.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// What the GatewayStatus will say.
    pub fn status(&self) -> &StatusBook {
        &self.status
    }
}

#[allow(clippy::too_many_arguments)]
async fn supervise(
    terminate: watch::Receiver<bool>,
    drain: Duration,
    probe: ProbeState,
    readiness: Readiness,
    stop: watch::Sender<bool>,
    main_loop: JoinHandle<()>,
    servers: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
) {
    until_set(terminate).await;
    readiness.set(false);
    match probe.node_drain() {
        Some(reason) => {
            probe.start_draining();
            tracing::info!(?drain, %reason, "stopping on a node taken out of service: load-balancer probes answer 503 while the flows move");
            tokio::time::sleep(drain).await;
        }
        None => tracing::info!(
            "stopping for a restart (the node stays in service): the load-balancer probe state is kept, so no flow moves"
        ),
    }
    let _ = stop.send(true);
    let _ = main_loop.await;
    for server in servers {
        let _ = server.await;
    }
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("stopped; the data plane is left running for the next instance");
}

async fn program_loop(
    mut programmer: Programmer,
    mut changes: mpsc::Receiver<Change>,
    config: DaemonConfig,
    (readiness, probe): (Readiness, ProbeState),
    stop: watch::Receiver<bool>,
) {
    let mut resync = tokio::time::interval_at(
        Instant::now() + config.resync_interval,
        config.resync_interval,
    );
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry_at: Option<Instant> = None;
    let mut retry_delay = config.retry_min;
    let mut announced = false;
    let stopped = until_set(stop);
    futures::pin_mut!(stopped);
    loop {
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            biased;
            () = &mut stopped => return,
            change = changes.recv() => {
                let Some(change) = change else { return };
                programmer.apply_change(change);
                let mut n = 1;
                while n < MAX_BATCH {
                    match changes.try_recv() {
                        Ok(c) => { programmer.apply_change(c); n += 1; }
                        Err(_) => break,
                    }
                }
                programmer.flush().await;
            }
            _ = resync.tick() => programmer.resync().await,
            () = tokio::time::sleep_until(retry_at.unwrap_or(far)), if retry_at.is_some() => {
                retry_at = None;
                programmer.flush().await;
            }
        }
        if !announced && programmer.started() {
            // Ready once the node was programmed once; draining clears it for good. From now
            // on the probe state is this instance's own (the state file follows it).
            announced = true;
            readiness.set(true);
            probe.set_started();
        }
        if programmer.needs_retry() {
            if retry_at.is_none() {
                retry_at = Some(Instant::now() + retry_delay);
                retry_delay = (retry_delay * 2).min(config.retry_max);
            }
        } else {
            retry_at = None;
            retry_delay = config.retry_min;
        }
    }
}
