//! Bringing a whole simulated cluster up from a scenario and down again: emulator and API
//! server, namespaces and fabric, node services (API forwarder, IMDS), operator, cni-managers,
//! gateway daemons, kubelet, manifests. Every resource is recorded in the run's state file
//! before it exists.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kube::Client;
use tokio::task::JoinSet;

use crate::components::{self, WorkerPaths};
use crate::fabric::LbRule;
use crate::images::{self, ImageSet};
use crate::kubelet::{Kubelet, KubeletConfig};
use crate::prereq::{self, Binaries, CNI_PLUGIN_DIR};
use crate::procs::{self, Launch, Started};
use crate::scenario::Scenario;
use crate::seed::{self, Role};
use crate::services;
use crate::startup::{client_for, free_port, primary_ip, wait_for};
use crate::state::{STATE_ROOT, StateFile};
use crate::topology::Topology;
use crate::{fabric_sync, k8s, netns, teardown};

mod kubectl_access;
mod ops;
pub use ops::Death;

/// Prints a progress line on stderr.
pub fn progress(msg: impl std::fmt::Display) {
    eprintln!("[egress-sim] {msg}");
}

/// A running simulation.
pub struct Cluster {
    state: Arc<Mutex<StateFile>>,
    /// Scenario.
    pub scenario: Scenario,
    /// Namespaces.
    pub topo: Arc<Topology>,
    /// Client of the API server.
    pub client: Client,
    /// Kubeconfig path (host loopback).
    pub kubeconfig: PathBuf,
    /// Emulator address.
    pub emulator: SocketAddr,
    /// Pods created by the manifests.
    pub expected_pods: usize,
    /// Whether gateway daemons run.
    pub daemons_running: bool,
    /// Load-balancer rules last seen.
    pub lb_rules: Arc<Mutex<Vec<LbRule>>>,
    kubelet: Option<Kubelet>,
    procs: Vec<Started>,
    launches: Vec<Launch>,
    tasks: JoinSet<()>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("topo", &self.topo)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Run ID.
    pub fn run_id(&self) -> String {
        self.state
            .lock()
            .map(|s| s.id().to_string())
            .unwrap_or_default()
    }

    /// Run directory.
    pub fn run_dir(&self) -> PathBuf {
        self.state
            .lock()
            .map(|s| s.dir().to_path_buf())
            .unwrap_or_default()
    }

    /// The kubelet's view of the pods.
    pub fn pods(&self) -> std::collections::BTreeMap<(String, String), crate::kubelet::PodRecord> {
        self.kubelet.as_ref().map(Kubelet::pods).unwrap_or_default()
    }

    fn record(&self, f: impl FnOnce(&mut crate::state::RunState)) -> Result<()> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| anyhow!("state lock poisoned"))?;
        s.update(f).context("failed to save the run state")
    }

    fn start_proc(&mut self, launch: &Launch) -> Result<usize> {
        self.procs
            .retain_mut(|p| p.check_running().is_ok() || p.record.name != launch.name);
        let dir = self.run_dir().join("logs");
        let started = procs::start(launch, &dir)?;
        let rec = started.record.clone();
        self.record(|s| s.processes.push(rec))?;
        self.procs.push(started);
        Ok(self.procs.len() - 1)
    }

    /// Brings everything up and applies the scenario's manifests.
    pub async fn up(scenario: Scenario, scenario_path: &Path) -> Result<Self> {
        Self::up_in(scenario, scenario_path, Path::new(STATE_ROOT)).await
    }

    /// As [`Cluster::up`], with run directories under `state_root`.
    pub async fn up_in(
        scenario: Scenario,
        scenario_path: &Path,
        state_root: &Path,
    ) -> Result<Self> {
        Self::up_with(scenario, scenario_path, state_root, None).await
    }

    /// As [`Cluster::up_in`]; with `images`, the operator, cni-managers, gateway daemons and
    /// the plugin come from the OCI archives in that directory (`src/images.rs`).
    pub async fn up_with(
        scenario: Scenario,
        scenario_path: &Path,
        state_root: &Path,
        images: Option<&Path>,
    ) -> Result<Self> {
        let bins = prereq::check()?;
        let state = StateFile::create(state_root, &scenario_path.display().to_string())?;
        progress(format!("run {} in {}", state.id(), state.dir().display()));
        let mut partial = Partial {
            state: Arc::new(Mutex::new(state)),
            procs: Vec::new(),
            launches: Vec::new(),
        };
        match Self::build(&mut partial, scenario, &bins, images).await {
            Ok(c) => Ok(c),
            Err(e) => {
                progress(format!("start-up failed: {e:#}; cleaning up"));
                partial.cleanup();
                Err(e)
            }
        }
    }

    async fn build(
        partial: &mut Partial,
        scenario: Scenario,
        bins: &Binaries,
        images_dir: Option<&Path>,
    ) -> Result<Self> {
        let (run_id, dir) = {
            let s = partial
                .state
                .lock()
                .map_err(|_| anyhow!("state lock poisoned"))?;
            (s.id().to_string(), s.dir().to_path_buf())
        };
        for sub in ["logs", "nodes", "cni-bin", "wireguard-logs", "pods"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("failed to create {}", dir.join(sub).display()))?;
        }
        let images = match images_dir {
            Some(d) => {
                progress(format!("loading the images of {} (podman)", d.display()));
                Some(ImageSet::load(d, &dir, &run_id)?)
            }
            None => None,
        };
        let images = images.as_ref();
        // Azure.
        let seed_path = dir.join("emulator-seed.json");
        let seed = seed::emulator_seed(&scenario).map_err(|e| anyhow!("invalid scenario: {e}"))?;
        std::fs::write(&seed_path, serde_json::to_vec_pretty(&seed)?)?;
        progress("starting egress-azure-emulator");
        let emu_url = partial
            .start(components::emulator(bins, &seed_path), &dir)?
            .first_line(Duration::from_secs(20))
            .await?;
        let emulator: SocketAddr = emu_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("emulator printed {emu_url:?}"))?;
        let nodes = seed::nodes(&scenario);
        let mut ips = Vec::new();
        for n in &nodes {
            ips.push(primary_ip(emulator, &n.name).await?);
        }
        // Kubernetes API.
        progress("starting egress-apiserver");
        let kubeconfig = dir.join("kubeconfig");
        let kubelet_socket = dir.join("kubelet.sock");
        let mut apiserver = components::apiserver(bins, &kubeconfig);
        apiserver
            .args
            .extend(kubectl_access::apiserver_args(&kubelet_socket));
        let api_url = partial
            .start(apiserver, &dir)?
            .first_line(Duration::from_secs(30))
            .await?;
        let api_addr: SocketAddr = api_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("API server printed {api_url:?}"))?;
        partial.update(|s| s.kubeconfig = Some(kubeconfig.clone()))?;
        let client = client_for(&kubeconfig).await?;

        // Namespaces.
        let topo =
            Arc::new(Topology::plan(&run_id, &nodes, &ips).with_dual_stack(scenario.dual_stack));
        progress(format!(
            "creating namespaces: router, internet, {} nodes",
            topo.nodes.len()
        ));
        {
            let st = partial.state.clone();
            let mut rec = |ns: &str| {
                if let Ok(mut s) = st.lock() {
                    let _ = s.update(|r| r.namespaces.push(ns.to_string()));
                }
            };
            topo.build_core(&mut rec)?;
            for n in &topo.nodes {
                rec(&n.ns);
                topo.build_node(n)?;
            }
        }
        netns::nft(&topo.inet, &services::echo_redirect_ruleset())?;
        let mut tasks = JoinSet::new();
        let http = services::bind_in(&topo.inet, SocketAddr::from((seed::INTERNET_SERVER_IP, 80)))?;
        let raw = services::bind_in(
            &topo.inet,
            SocketAddr::from((seed::INTERNET_SERVER_IP, services::RAW_ECHO_PORT)),
        )?;
        services::spawn_echo(&mut tasks, http, raw);
        let stream = services::bind_in(
            &topo.inet,
            SocketAddr::from((seed::INTERNET_SERVER_IP, services::STREAM_ECHO_PORT)),
        )?;
        services::spawn_line_echo(&mut tasks, stream);
        let udp = services::bind_udp_in(
            &topo.inet,
            SocketAddr::from((seed::INTERNET_SERVER_IP, services::UDP_ECHO_PORT)),
        )?;
        services::spawn_udp_source_echo(&mut tasks, udp);
        let peered = services::bind_in(
            &topo.vnet,
            SocketAddr::from((seed::PEERED_SERVER_IP, services::RAW_ECHO_PORT)),
        )?;
        services::spawn_raw_echo(&mut tasks, peered);
        if topo.dual_stack {
            // The same HTTP and raw echo on both internet IPv6 addresses (the second is in
            // its own /64, for IPv6 excludeCidrs).
            for ip in [seed::INTERNET_SERVER_IP6, seed::INTERNET_SERVER2_IP6] {
                let http = services::bind_in(&topo.inet, SocketAddr::from((ip, 80)))?;
                let raw =
                    services::bind_in(&topo.inet, SocketAddr::from((ip, services::RAW_ECHO_PORT)))?;
                services::spawn_echo(&mut tasks, http, raw);
            }
        }
        for n in &topo.nodes {
            let fwd = services::bind_in(&n.ns, api_addr)?;
            services::spawn_forwarder(&mut tasks, fwd, api_addr);
            let imds = services::bind_in(&n.ns, SocketAddr::from((seed::IMDS_IP, 80)))?;
            services::spawn_imds(&mut tasks, imds, emulator, n.spec.name.clone());
        }

        // Fabric.
        let stop = Arc::new(AtomicBool::new(false));
        let interval = Duration::from_secs(u64::from(scenario.probe_interval_seconds));
        let (targets_tx, targets_rx) = tokio::sync::watch::channel(Default::default());
        let health = fabric_sync::start_prober(&topo.vnet, interval, targets_rx, stop.clone())?;
        let lb_rules = Arc::new(Mutex::new(Vec::new()));
        tasks.spawn(fabric_sync::run_sync(
            topo.clone(),
            emulator,
            Duration::from_millis(500),
            targets_tx,
            health,
            stop.clone(),
            lb_rules.clone(),
        ));

        // Cluster objects and components.
        let node_list: Vec<_> = topo
            .nodes
            .iter()
            .map(|n| (n.spec.clone(), n.primary_ip.to_string()))
            .collect();
        k8s::create_nodes(&client, &node_list).await?;
        let cloud = dir.join("azure.json");
        std::fs::write(
            &cloud,
            serde_json::to_vec_pretty(&seed::cloud_config(
                &scenario,
                &format!("http://{emulator}"),
            ))?,
        )?;
        progress("starting egress-operator");
        partial.start(
            images::wrap(
                images,
                images::OPERATOR,
                components::operator(bins, &kubeconfig, &cloud, free_port()?, free_port()?),
            ),
            &dir,
        )?;

        let cni_bin = dir.join("cni-bin");
        for p in ["ptp", "host-local", "loopback"] {
            std::os::unix::fs::symlink(Path::new(CNI_PLUGIN_DIR).join(p), cni_bin.join(p))?;
        }
        match images {
            Some(set) => set.install_plugin(&cni_bin)?,
            None => std::os::unix::fs::symlink(&bins.cni_plugin, cni_bin.join("kube-egress-cni"))?,
        }
        let mut runtimes = std::collections::BTreeMap::new();
        let mut host_ips = std::collections::BTreeMap::new();
        for n in topo.nodes.iter().filter(|n| n.spec.role == Role::Worker) {
            let (conf_dir, ipam_dir) = crate::kubelet::cni_paths(&dir, &n.spec.name);
            std::fs::create_dir_all(&conf_dir)?;
            let cidr = n.spec.pod_cidr.map(|c| c.to_string()).unwrap_or_default();
            let cidr6 = n.spec.pod6_cidr.map(|c| c.to_string());
            std::fs::write(
                conf_dir.join("10-simnet.conflist"),
                serde_json::to_vec_pretty(&crate::cni::main_conflist(
                    &cidr,
                    cidr6.as_deref(),
                    &ipam_dir,
                ))?,
            )?;
            let paths = WorkerPaths {
                conf_dir,
                socket: dir
                    .join("nodes")
                    .join(&n.spec.name)
                    .join("sock")
                    .join("cni.sock"),
            };
            progress(format!("starting egress-cni-manager on {}", n.spec.name));
            partial.start(
                images::wrap(
                    images,
                    images::CNI_MANAGER,
                    components::cni_manager(bins, n, &kubeconfig, &paths),
                ),
                &dir,
            )?;
            runtimes.insert(
                n.spec.name.clone(),
                crate::kubelet::runtime_for(&dir, &n.spec.name, &n.ns),
            );
            host_ips.insert(n.spec.name.clone(), n.primary_ip.to_string());
        }
        let mut daemons_running = false;
        let daemon_program = bins
            .gateway_daemon
            .clone()
            .or_else(|| images.map(|_| images::GATEWAY_DAEMON.into()));
        match &daemon_program {
            Some(program) => {
                for n in topo.nodes.iter().filter(|n| n.spec.role == Role::Gateway) {
                    let gw_ns = components::gateway_netns(n);
                    partial.update(|s| s.namespaces.push(gw_ns.clone()))?;
                    if let Some(set) = images {
                        set.init_gateway_netns(&n.ns, &gw_ns)?;
                    }
                    let state_file = components::probe_state_file(&dir, n);
                    if let Some(parent) = state_file.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("failed to create {}", parent.display()))?;
                    }
                    progress(format!("starting egress-gateway-daemon on {}", n.spec.name));
                    partial.start(
                        gateway_priority(images::wrap(
                            images,
                            images::GATEWAY_LB_PROBE,
                            components::gateway_lb_probe(program, n, &state_file),
                        )),
                        &dir,
                    )?;
                    partial.start(
                        gateway_priority(images::wrap(
                            images,
                            images::GATEWAY_DAEMON,
                            components::gateway_daemon(
                                program,
                                n,
                                &kubeconfig,
                                &dir.join("wireguard-logs"),
                                2 * u64::from(scenario.probe_interval_seconds),
                                &state_file,
                            ),
                        )),
                        &dir,
                    )?;
                }
                daemons_running = true;
            }
            None => progress(
                "egress-gateway-daemon is not built: gateway nodes run without it, so pods naming an SGC cannot get their tunnel",
            ),
        }

        // Wait for the conflists before pods start (as kubelet waits for the network plugin).
        for (node, rt) in &runtimes {
            wait_for(Duration::from_secs(30), || {
                rt.conf_dir.join("01-egressgateway.conflist").exists()
            })
            .await
            .with_context(|| {
                let log = dir
                    .join("logs")
                    .join(format!("egress-cni-manager-{node}.log"));
                format!(
                    "egress-cni-manager did not install its conflist in {}; the end of {}:\n{}",
                    rt.conf_dir.display(),
                    log.display(),
                    crate::startup::log_tail(&log, 20)
                )
            })?;
        }
        let workers: Vec<String> = runtimes.keys().cloned().collect();
        let sched = Arc::new(k8s::Scheduler::new(workers));
        let st = partial.state.clone();
        let kubelet = Kubelet::start(
            client.clone(),
            KubeletConfig {
                run_id: run_id.clone(),
                runtimes,
                backoff_initial: Duration::from_millis(500),
                backoff_max: Duration::from_secs(8),
                host_ips,
                pod_log_dir: dir.join("pods"),
            },
            sched.clone(),
            Arc::new(move |ns: &str| {
                if let Ok(mut s) = st.lock() {
                    let _ = s.update(|r| r.namespaces.push(ns.to_string()));
                }
            }),
        );
        let shown = kubectl_access::components(&topo, daemons_running);
        kubectl_access::start(
            &mut tasks,
            &client,
            &kubelet_socket,
            &kubelet,
            &shown,
            &dir,
            partial.state.clone(),
        )
        .await?;
        let docs = scenario
            .manifest_documents()
            .map_err(|(f, m)| anyhow!("invalid scenario: {f}: {m}"))?;
        progress(format!("applying {} manifest documents", docs.len()));
        let expected_pods = k8s::apply_manifests(&client, &docs, &sched).await?;
        Ok(Self {
            state: partial.state.clone(),
            scenario,
            topo,
            client,
            kubeconfig,
            emulator,
            expected_pods,
            daemons_running,
            lb_rules,
            kubelet: Some(kubelet),
            procs: std::mem::take(&mut partial.procs),
            launches: std::mem::take(&mut partial.launches),
            tasks,
            stop,
        })
    }

    /// Checks that every component process still runs.
    pub fn check_processes(&mut self) -> Result<()> {
        for p in &mut self.procs {
            p.check_running()?;
        }
        Ok(())
    }

    /// Stops a component process by name prefix (tests: kill a daemon or the operator).
    pub fn kill_process(&mut self, name_prefix: &str) -> Option<i32> {
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.record.name.starts_with(name_prefix))?;
        // A DaemonSet pod's grace period: the daemon drains its probe first.
        procs::stop_all(std::slice::from_ref(&p.record), Duration::from_secs(30));
        p.reap();
        Some(p.pid())
    }

    /// Tears everything down: pods get CNI DEL, processes stop, namespaces and files go.
    pub async fn down(mut self) -> teardown::TeardownReport {
        progress("tearing down");
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        self.stop.store(true, Ordering::Relaxed);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let (dir, run) = match self.state.lock() {
            Ok(s) => (s.dir().to_path_buf(), s.state().clone()),
            Err(_) => return teardown::TeardownReport::default(),
        };
        let mut records = run.processes.clone();
        records.reverse();
        procs::stop_all(&records, Duration::from_secs(10));
        for p in &mut self.procs {
            p.reap();
        }
        let report =
            tokio::task::spawn_blocking(move || teardown::teardown(&dir, &run, Duration::ZERO))
                .await
                .unwrap_or_default();
        progress(format!(
            "removed {} namespaces, stopped {} processes",
            report.namespaces, report.processes
        ));
        report
    }
}

/// What exists while `build` runs, so a failure can be undone.
struct Partial {
    state: Arc<Mutex<StateFile>>,
    procs: Vec<Started>,
    launches: Vec<Launch>,
}

/// CPU priority of a gateway node's processes (the daemon, its wireguard-go, the probe
/// keeper): a real gateway node has CPUs of its own, here it shares two cores with every pod's
/// wireguard-go and the measurements, which at hundreds of pods starves the gateways and
/// measures the machine instead (docs/simulator.md). Containers (`--images`) keep theirs.
const GATEWAY_NICE: i32 = -10;

fn gateway_priority(launch: Launch) -> Launch {
    if launch.program.ends_with("podman") {
        launch
    } else {
        launch.niced(GATEWAY_NICE)
    }
}

impl Partial {
    fn update(&self, f: impl FnOnce(&mut crate::state::RunState)) -> Result<()> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| anyhow!("state lock poisoned"))?;
        s.update(f).context("failed to save the run state")
    }

    fn start(&mut self, launch: Launch, dir: &Path) -> Result<&mut Started> {
        let started = procs::start(&launch, &dir.join("logs"))?;
        let rec = started.record.clone();
        self.update(|s| s.processes.push(rec))?;
        self.procs.push(started);
        self.launches.push(launch);
        self.procs.last_mut().ok_or_else(|| anyhow!("no process"))
    }

    fn cleanup(&mut self) {
        if let Ok(s) = self.state.lock() {
            let _ = teardown::teardown(s.dir(), s.state(), Duration::ZERO);
        }
        for p in &mut self.procs {
            p.reap();
        }
    }
}

impl Cluster {
    /// Starts a component again after [`Cluster::kill_process`] (same command line).
    pub fn restart_process(&mut self, name_prefix: &str) -> Result<()> {
        let launch = self
            .launches
            .iter()
            .find(|l| l.name.starts_with(name_prefix))
            .cloned()
            .ok_or_else(|| anyhow!("no component named {name_prefix}"))?;
        self.start_proc(&launch)?;
        Ok(())
    }
}
