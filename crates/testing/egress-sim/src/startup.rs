//! Start-up helpers of a run: free loopback ports, the kube client from the run's kubeconfig,
//! node primary IPs from the emulator's IMDS, bounded waits.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kube::Client;

use crate::services;

/// A free port on the host loopback.
pub fn free_port() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    l.local_addr().context("failed to find a free port")
}

/// Waits until `f` holds, at most `timeout`.
pub async fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!("timed out after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The last `lines` lines of a component's log, for a start-up error (the run directory is
/// removed on failure, so the error must carry them).
pub fn log_tail(log: &Path, lines: usize) -> String {
    match std::fs::read(log) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            match crate::kubelet_api::tail(&text, Some(lines)).trim_end() {
                "" => "(empty)".into(),
                tail => tail.to_string(),
            }
        }
        Err(e) => format!("(cannot read it: {e})"),
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let kc =
        kube::config::Kubeconfig::read_from(kubeconfig).context("failed to read the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("failed to load the kubeconfig")?;
    Client::try_from(config).context("failed to create a Kubernetes client")
}

/// The primary IP of a VM, from IMDS.
pub async fn primary_ip(emulator: SocketAddr, computer: &str) -> Result<Ipv4Addr> {
    let req = hyper::Request::builder()
        .uri(format!(
            "/imds/{computer}/metadata/instance?api-version=2021-10-01"
        ))
        .header("host", emulator.to_string())
        .header("Metadata", "true")
        .body(http_body_util::Full::new(bytes::Bytes::new()))?;
    let resp = services::send(emulator, req)
        .await
        .map_err(|e| anyhow!("failed to ask IMDS for {computer}: {e}"))?;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v.pointer("/network/interface/0/ipv4/ipAddress/0/privateIpAddress")
        .and_then(|s| s.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("IMDS has no primary IP for {computer}: {v}"))
}
