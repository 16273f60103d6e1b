//! The commands: `run` (up, wait for readiness, measure every pod's egress address, report,
//! down), `up` (stay up until SIGTERM/ctrl-c, kubeconfig printed), `down` (remove every run
//! recorded under /run/egress-sim, also after a crash).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::cluster::{Cluster, progress};
use crate::report::{self, PodRow, Report};
use crate::scenario::Scenario;
use crate::seed;
use crate::services;
use crate::state::{self, STATE_ROOT};
use crate::teardown;

/// Waits until every SGC is ready and every expected pod is ready (or the timeout passes).
pub async fn wait_ready(cluster: &Cluster, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let sgcs = report::sgcs(&cluster.client).await.unwrap_or_default();
        let pods = cluster.pods();
        let sgc_ready = sgcs.iter().filter(|s| s.ready).count();
        let pods_ready = pods.values().filter(|p| p.ip.is_some()).count();
        let line = format!(
            "waiting: {sgc_ready}/{} SGCs ready, {pods_ready}/{} pods ready",
            sgcs.len(),
            cluster.expected_pods
        );
        if line != last {
            progress(&line);
            last = line;
        }
        if sgc_ready == sgcs.len()
            && pods.len() >= cluster.expected_pods
            && pods_ready == pods.len()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow!("not ready after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Has every pod connect to the internet server and builds the report.
pub async fn measure(cluster: &Cluster) -> Result<Report> {
    let sgcs = report::sgcs(&cluster.client).await?;
    let mut pods = Vec::new();
    for ((ns, name), rec) in cluster.pods() {
        let sgc_row = rec
            .sgc
            .as_ref()
            .and_then(|s| sgcs.iter().find(|r| r.namespace == ns && &r.name == s));
        let sgc_prefix = sgc_row.and_then(|r| r.egress_ip_prefix.clone());
        let sgc_prefix6 = sgc_row.and_then(|r| r.egress_ipv6_prefix.clone());
        let (egress_ip, error) = match &rec.netns {
            Some(pod_ns) => match seen_from(pod_ns, seed::INTERNET_SERVER_IP.into()).await {
                Ok(ip) => (Some(ip), None),
                Err(e) => (None, Some(e)),
            },
            None => (
                None,
                Some(rec.last_error.clone().unwrap_or_else(|| "not ready".into())),
            ),
        };
        let in_prefix = rec.sgc.as_ref().map(|_| match (&egress_ip, &sgc_prefix) {
            (Some(ip), Some(prefix)) => report::in_prefix(ip, prefix),
            _ => false,
        });
        // Dual-stack pods also reach the server's IPv6 address; a failure is reported.
        let (egress_ipv6, error) = match (&rec.netns, &rec.ip6) {
            (Some(pod_ns), Some(_)) if cluster.topo.dual_stack => {
                match seen_from(pod_ns, seed::INTERNET_SERVER_IP6.into()).await {
                    Ok(ip) => (Some(ip), error),
                    Err(e) => (None, error.or(Some(format!("IPv6: {e}")))),
                }
            }
            _ => (None, error),
        };
        let in_ipv6_prefix = sgc_prefix6.as_ref().map(|prefix| {
            egress_ipv6
                .as_ref()
                .is_some_and(|ip| report::in_prefix(ip, prefix))
        });
        pods.push(PodRow {
            namespace: ns,
            name,
            node: rec.node,
            sgc: rec.sgc,
            egress_ip,
            in_prefix,
            egress_ipv6,
            in_ipv6_prefix,
            ready_ms: rec.ready_ms,
            error,
        });
    }
    Ok(Report {
        outbound_ip: seed::OUTBOUND_IP.to_string(),
        outbound_ipv6: cluster
            .topo
            .dual_stack
            .then(|| seed::OUTBOUND_IP6.to_string()),
        sgcs,
        pods,
    })
}

/// The source address the internet echo at `server` sees from a pod's namespace.
async fn seen_from(pod_ns: &str, server: std::net::IpAddr) -> Result<String, String> {
    let pod_ns = pod_ns.to_string();
    tokio::task::spawn_blocking(move || {
        services::observed_source(
            &pod_ns,
            server,
            services::RAW_ECHO_PORT,
            Duration::from_secs(5),
        )
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map(|line| report::echoed_ip(&line))
}

/// `egress-sim run`: returns whether the run met every expectation. With `images`, the
/// shipped components run from the OCI archives in that directory.
pub async fn run(path: &Path, json: bool, images: Option<&Path>) -> Result<bool> {
    let scenario = Scenario::load(path)?;
    let timeout = Duration::from_secs(u64::from(scenario.ready_timeout_seconds));
    let mut cluster = Cluster::up_with(scenario, path, &state_root(), images).await?;
    let outcome = async {
        if let Err(e) = wait_ready(&cluster, timeout).await {
            progress(format!("{e}; reporting what is there"));
        }
        cluster.check_processes()?;
        measure(&cluster).await
    }
    .await;
    cluster.down().await;
    let report = outcome?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let problems = report.problems();
    for p in &problems {
        progress(format!("problem: {p}"));
    }
    Ok(problems.is_empty())
}

/// `egress-sim up`: runs until SIGTERM or ctrl-c (`images` as for [`run`]).
pub async fn up(path: &Path, images: Option<&Path>) -> Result<()> {
    let scenario = Scenario::load(path)?;
    let cluster = Cluster::up_with(scenario, path, &state_root(), images).await?;
    progress(format!(
        "up (run {}); stop with ctrl-c or `egress-sim down`",
        cluster.run_id()
    ));
    println!("{}", cluster.kubeconfig.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    cluster.down().await;
    Ok(())
}

/// `egress-sim down`: removes every recorded run.
pub fn down(root: &Path) -> Result<usize> {
    let runs = state::list_runs(root)?;
    if runs.is_empty() {
        progress(format!("nothing to remove under {}", root.display()));
    }
    let mut problems = Vec::new();
    for (dir, run) in &runs {
        progress(format!("removing run {}", run.id));
        let r = teardown::teardown(dir, run, Duration::from_secs(60));
        progress(format!(
            "run {}: stopped {} processes, removed {} namespaces",
            run.id, r.processes, r.namespaces
        ));
        problems.extend(r.problems);
    }
    if !problems.is_empty() {
        return Err(anyhow!(
            "some things could not be removed: {}",
            problems.join("; ")
        ));
    }
    Ok(runs.len())
}

/// Where runs are recorded: `EGRESS_SIM_STATE_DIR`, else /run/egress-sim.
pub fn state_root() -> std::path::PathBuf {
    std::env::var_os("EGRESS_SIM_STATE_DIR").map_or_else(|| STATE_ROOT.into(), Into::into)
}
