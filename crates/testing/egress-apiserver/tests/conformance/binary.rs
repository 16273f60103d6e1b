//! The `egress-apiserver` binary: serves CRDs from `--crds`, writes the kubeconfig, prints the
//! URL, and stops promptly on SIGTERM even with a watch open.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TempDir, fixture, wait_for};

#[tokio::test]
async fn binary_serves_writes_kubeconfig_and_stops_on_sigterm() {
    let dir = TempDir::new();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_egress-apiserver"))
        .args(["--port", "0", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--crds")
        .arg(fixture("crds"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line.trim().to_string())
    })
    .await
    .unwrap()
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains(&url));
    let kubectl = |args: &[&str]| {
        let mut cmd = Command::new("/usr/bin/kubectl");
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args);
        cmd
    };
    let out = kubectl(&["get", "crd", "widgets.example.com", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An open watch must not hold up shutdown.
    let mut watch = kubectl(&["get", "ns", "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    wait_for(10, "kubectl's watch to be open", || {
        let client = client.clone();
        async move {
            let req = http::Request::get("/admin/requests")
                .body(Vec::new())
                .unwrap();
            let log: serde_json::Value = client.request(req).await.ok()?;
            let watching = log["recent"]
                .as_array()?
                .iter()
                .any(|r| r["verb"] == "watch");
            watching.then_some(())
        }
    })
    .await;
    let t = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopped in {:?}",
        t.elapsed()
    );
    let _ = watch.kill();
    let _ = watch.wait();
}
