//! A minimal kubelet for all worker nodes: watches Pods, assigns a worker to unscheduled ones
//! (the API server's controllers create the pods of Deployments), and for each pod of a
//! worker creates a pod namespace and runs the node's CNI chain; a failed ADD is undone (DEL,
//! namespace removed) and retried with exponential backoff as kubelet does; success sets
//! `status.podIP` and `Ready`. Status, Events and the pod's log are `pod_status`'s. Deleted
//! pods and shutdown get DEL. The components' own pods (`system_pods`) are not run here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cni::{self, Runtime, Sandbox};
use crate::k8s::{self, Scheduler};
use crate::kubelet_api::{Locator, PodHandle};
use crate::pod_status::{self, Recorder, Source};
use crate::{netns, system_pods};

/// Live sandboxes by pod UID: what DEL needs (sandbox, runtime, ADD result).
type Sandboxes = BTreeMap<String, (Sandbox, Runtime, Option<Value>)>;

/// Records a namespace name in the run's state before it is created.
pub type NsRecorder = Arc<dyn Fn(&str) + Send + Sync>;

/// What the kubelet knows about one pod.
#[derive(Debug, Clone, Default)]
pub struct PodRecord {
    /// Pod UID.
    pub uid: String,
    /// Node.
    pub node: String,
    /// SGC named by the annotation.
    pub sgc: Option<String>,
    /// Pod namespace (network) of the current sandbox.
    pub netns: Option<String>,
    /// Pod IP once ready.
    pub ip: Option<String>,
    /// Pod IPv6 once ready (dual-stack clusters).
    pub ip6: Option<String>,
    /// Milliseconds from first seen to ready.
    pub ready_ms: Option<u64>,
    /// Failed ADD attempts.
    pub attempts: u32,
    /// Last ADD error.
    pub last_error: Option<String>,
    /// The pod's kubelet log.
    pub log: Option<PathBuf>,
}

/// Settings of the kubelet.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Run ID (prefix of namespaces and container IDs).
    pub run_id: String,
    /// Per worker: CNI runtime settings.
    pub runtimes: BTreeMap<String, Runtime>,
    /// First retry delay after a failed ADD.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Per worker: its primary IP (`status.hostIP`).
    pub host_ips: BTreeMap<String, String>,
    /// Where each pod's kubelet log is written (`kubectl logs`).
    pub pod_log_dir: PathBuf,
}

/// Handle of the running kubelet.
#[derive(Debug)]
pub struct Kubelet {
    pods: Arc<Mutex<BTreeMap<(String, String), PodRecord>>>,
    sandboxes: Arc<Mutex<Sandboxes>>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Kubelet {
    /// Starts watching pods and deployments.
    pub fn start(
        client: Client,
        config: KubeletConfig,
        sched: Arc<Scheduler>,
        record_ns: NsRecorder,
    ) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let pods = Arc::new(Mutex::new(BTreeMap::new()));
        let sandboxes = Arc::new(Mutex::new(BTreeMap::new()));
        let mut tasks = tokio::task::JoinSet::new();
        let ctx = Ctx {
            recorder: Arc::new(Recorder::new(client.clone())),
            client: client.clone(),
            config: Arc::new(config),
            sched: sched.clone(),
            pods: pods.clone(),
            sandboxes: sandboxes.clone(),
            record_ns,
            stop: stop_rx,
        };
        tasks.spawn(watch_pods(ctx.clone()));
        Self {
            pods,
            sandboxes,
            stop,
            tasks,
        }
    }

    /// A snapshot of every pod seen.
    pub fn pods(&self) -> BTreeMap<(String, String), PodRecord> {
        self.pods.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Finds a pod for the kubelet API: its sandbox's namespace and its log.
    pub fn locator(&self) -> Locator {
        let pods = self.pods.clone();
        Arc::new(move |ns: &str, name: &str| {
            let pods = pods.lock().ok()?;
            let r = pods.get(&(ns.to_string(), name.to_string()))?;
            let log = r.log.clone()?;
            Some(PodHandle {
                netns: r.netns.clone(),
                hosts: Some(log.with_extension("hosts")),
                log,
                no_exec: r.netns.is_none().then(|| {
                    format!(
                        "container is not running: pod {ns}/{name} is waiting for its sandbox{}",
                        r.last_error
                            .as_ref()
                            .map(|e| format!(" (last error: {e})"))
                            .unwrap_or_default()
                    )
                }),
            })
        })
    }

    /// Stops watching and tears every sandbox down (CNI DEL, namespace removed).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let all: Vec<_> = self
            .sandboxes
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
            .into_values()
            .collect();
        for (sb, rt, result) in all {
            let _ = tokio::task::spawn_blocking(move || teardown(&sb, &rt, result.as_ref())).await;
        }
    }
}

#[derive(Clone)]
struct Ctx {
    client: Client,
    recorder: Arc<Recorder>,
    config: Arc<KubeletConfig>,
    sched: Arc<Scheduler>,
    pods: Arc<Mutex<BTreeMap<(String, String), PodRecord>>>,
    sandboxes: Arc<Mutex<Sandboxes>>,
    record_ns: NsRecorder,
    stop: watch::Receiver<bool>,
}

fn teardown(sb: &Sandbox, rt: &Runtime, result: Option<&Value>) {
    if let Ok(list) = cni::load_conflist(&rt.conf_dir)
        && let Err(e) = cni::del(&list, sb, rt, result)
    {
        tracing::warn!(pod = %sb.pod_name, error = %e, "CNI DEL failed");
    }
    if let Some(name) = sb.netns_path.file_name().and_then(|n| n.to_str()) {
        let _ = netns::delete(name);
    }
}

async fn watch_pods(ctx: Ctx) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut stop = ctx.stop.clone();
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = stop.changed() => return,
        };
        let Some(ev) = ev else { return };
        match ev {
            Ok(Event::Apply(p) | Event::InitApply(p)) => on_pod(&ctx, p).await,
            Ok(Event::Delete(p)) => on_delete(&ctx, &p).await,
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pod watch error"),
        }
    }
}

async fn on_pod(ctx: &Ctx, pod: Pod) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    if system_pods::is_component(&pod) {
        return;
    }
    let Some(node) = node else {
        if let Some(w) = ctx.sched.pick() {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let _ = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"nodeName": w}})),
                )
                .await;
        }
        return;
    };
    if !ctx.sched.is_worker(&node) || pod.metadata.deletion_timestamp.is_some() {
        return;
    }
    {
        let Ok(mut pods) = ctx.pods.lock() else {
            return;
        };
        if pods
            .get(&(ns.clone(), name.clone()))
            .is_some_and(|r| r.uid == uid)
        {
            return;
        }
        pods.insert(
            (ns.clone(), name.clone()),
            PodRecord {
                uid: uid.clone(),
                node: node.clone(),
                sgc: k8s::annotations(&pod).get(k8s::POD_ANNOTATION).cloned(),
                log: Some(pod_status::log_path(
                    &ctx.config.pod_log_dir,
                    &ns,
                    &name,
                    &uid,
                )),
                ..Default::default()
            },
        );
    }
    let message = format!("Successfully assigned {ns}/{name} to {node}");
    ctx.recorder
        .record(&pod, Source::Scheduler, "Normal", "Scheduled", &message)
        .await;
    tokio::spawn(run_pod(ctx.clone(), pod, node));
}

async fn on_delete(ctx: &Ctx, pod: &Pod) {
    let uid = pod.uid().unwrap_or_default();
    ctx.recorder.forget(&uid);
    if let Ok(mut pods) = ctx.pods.lock() {
        pods.remove(&(pod.namespace().unwrap_or_default(), pod.name_any()));
    }
    let sb = ctx.sandboxes.lock().ok().and_then(|mut s| s.remove(&uid));
    if let Some((sb, rt, result)) = sb {
        let _ = tokio::task::spawn_blocking(move || teardown(&sb, &rt, result.as_ref())).await;
    }
}

fn still_wanted(ctx: &Ctx, key: &(String, String), uid: &str) -> bool {
    !*ctx.stop.borrow()
        && ctx
            .pods
            .lock()
            .map(|p| p.get(key).is_some_and(|r| r.uid == uid))
            .unwrap_or(false)
}

async fn run_pod(ctx: Ctx, pod: Pod, node: String) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let key = (ns.clone(), name.clone());
    let uid = pod.uid().unwrap_or_default();
    let Some(rt) = ctx.config.runtimes.get(&node).cloned() else {
        return;
    };
    let first_seen = Instant::now();
    let since = k8s::now();
    let log = pod_status::log_path(&ctx.config.pod_log_dir, &ns, &name, &uid);
    let mut delay = ctx.config.backoff_initial;
    let short_uid: String = uid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    for attempt in 0u32.. {
        if !still_wanted(&ctx, &key, &uid) {
            return;
        }
        let netns_name = format!("{}-p{short_uid}-{attempt}", ctx.config.run_id);
        let sandbox = Sandbox {
            container_id: format!("{}{short_uid}{attempt:04}", ctx.config.run_id),
            netns_path: netns::path(&netns_name),
            ifname: "eth0".into(),
            pod_namespace: ns.clone(),
            pod_name: name.clone(),
            pod_uid: uid.clone(),
            annotations: k8s::annotations(&pod),
        };
        (ctx.record_ns)(&netns_name);
        pod_status::log_line(
            &log,
            &format!(
                "creating the pod sandbox (attempt {}): network namespace {netns_name}, CNI ADD",
                attempt + 1
            ),
        );
        let (sb, rt2) = (sandbox.clone(), rt.clone());
        let outcome = tokio::task::spawn_blocking(move || -> Result<Value, String> {
            netns::create(&netns_name, false).map_err(|e| e.to_string())?;
            let list = cni::load_conflist(&rt2.conf_dir).map_err(|e| e.to_string())?;
            match cni::add(&list, &sb, &rt2) {
                Ok(result) => Ok(result),
                Err(e) => {
                    let _ = cni::del(&list, &sb, &rt2, None);
                    let _ = netns::delete(&netns_name);
                    Err(e.to_string())
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match outcome {
            Ok(result) => {
                let ip = cni::pod_ipv4(&result);
                let ip6 = cni::pod_ipv6(&result);
                let ready_ms = first_seen.elapsed().as_millis() as u64;
                if let Ok(mut s) = ctx.sandboxes.lock() {
                    s.insert(uid.clone(), (sandbox.clone(), rt.clone(), Some(result)));
                }
                if let Ok(mut pods) = ctx.pods.lock()
                    && let Some(r) = pods.get_mut(&key)
                {
                    r.netns = sandbox
                        .netns_path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned());
                    r.ip = ip.clone();
                    r.ip6 = ip6.clone();
                    r.ready_ms = Some(ready_ms);
                    r.attempts = attempt;
                }
                let status = pod_status::running(
                    &pod,
                    ip.as_deref().unwrap_or_default(),
                    ip6.as_deref(),
                    ctx.config.host_ips.get(&node).map(String::as_str),
                    &sandbox.container_id,
                    &k8s::now(),
                );
                set_status(&ctx, &ns, &name, status).await;
                started(
                    &ctx,
                    &pod,
                    &node,
                    &log,
                    &netns_name_of(&sandbox),
                    ip.as_deref(),
                )
                .await;
                if !still_wanted(&ctx, &key, &uid) {
                    // Deleted while we were adding: undo.
                    let sb = ctx.sandboxes.lock().ok().and_then(|mut s| s.remove(&uid));
                    if let Some((sb, rt, result)) = sb {
                        let _ = tokio::task::spawn_blocking(move || {
                            teardown(&sb, &rt, result.as_ref())
                        })
                        .await;
                    }
                }
                return;
            }
            Err(e) => {
                tracing::info!(pod = %format!("{ns}/{name}"), attempt, error = %e, "pod sandbox ADD failed; retrying");
                if let Ok(mut pods) = ctx.pods.lock()
                    && let Some(r) = pods.get_mut(&key)
                {
                    r.attempts = attempt + 1;
                    r.last_error = Some(e.clone());
                }
                pod_status::log_line(&log, &format!("CNI ADD failed, retrying in {delay:?}: {e}"));
                ctx.recorder
                    .record(
                        &pod,
                        Source::Kubelet(&node),
                        "Warning",
                        "FailedCreatePodSandBox",
                        &format!("Failed to create pod sandbox: {e}"),
                    )
                    .await;
                let host_ip = ctx.config.host_ips.get(&node).map(String::as_str);
                set_status(
                    &ctx,
                    &ns,
                    &name,
                    pod_status::waiting(&pod, host_ip, &e, &since),
                )
                .await;
                let mut stop = ctx.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
                delay = (delay * 2).min(ctx.config.backoff_max);
            }
        }
    }
}

async fn set_status(ctx: &Ctx, ns: &str, name: &str, status: Value) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        tracing::debug!(pod = %name, error = %e, "failed to set pod status");
    }
}

fn netns_name_of(sandbox: &Sandbox) -> String {
    sandbox
        .netns_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The log lines and Events of a pod whose sandbox is up: its containers "start" (they are
/// this machine's userland in the pod's namespace).
async fn started(
    ctx: &Ctx,
    pod: &Pod,
    node: &str,
    log: &std::path::Path,
    netns: &str,
    ip: Option<&str>,
) {
    pod_status::log_line(
        log,
        &format!(
            "pod sandbox ready: network namespace {netns}, IP {}",
            ip.unwrap_or("none")
        ),
    );
    let hosts = pod_status::hosts_file(&pod.name_any(), ip);
    if let Err(e) = std::fs::write(log.with_extension("hosts"), hosts) {
        tracing::warn!(error = %e, "failed to write the pod's /etc/hosts");
    }
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let image = c.image.clone().unwrap_or_default();
        pod_status::log_line(
            log,
            &format!(
                "container {} started: the image {image:?} is not run; `kubectl exec` runs commands of this machine in the pod's network namespace",
                c.name
            ),
        );
        ctx.recorder
            .record(
                pod,
                Source::Kubelet(node),
                "Normal",
                "Created",
                &format!("Created container: {}", c.name),
            )
            .await;
        ctx.recorder
            .record(
                pod,
                Source::Kubelet(node),
                "Normal",
                "Started",
                &format!("Started container {}", c.name),
            )
            .await;
    }
}

/// Default per-worker runtime settings below a run directory.
pub fn runtime_for(run_dir: &std::path::Path, node: &str, node_netns: &str) -> Runtime {
    Runtime {
        conf_dir: run_dir.join("nodes").join(node).join("net.d"),
        bin_dir: run_dir.join("cni-bin"),
        node_netns: node_netns.to_string(),
    }
}

/// Paths a run's CNI setup uses.
pub fn cni_paths(run_dir: &std::path::Path, node: &str) -> (PathBuf, PathBuf) {
    let base = run_dir.join("nodes").join(node);
    (base.join("net.d"), base.join("ipam"))
}
