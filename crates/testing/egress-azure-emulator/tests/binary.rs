//! The built binary: starts with a seed file, prints its URL, answers a curl-style request,
//! stops cleanly on SIGTERM; a bad seed path fails with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod process;
use process::{BIN, Stop, wait_for_file};

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn binary_serves_a_seed_file_and_stops_on_sigterm() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/default.yaml");
    let child = Command::new(BIN)
        .args(["--seed", seed, "--port", "0", "--lro-polls", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Stop(child);
    let stdout = guard.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .trim()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // See common::http_client: rustls needs a provider when features are unified.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let vmss = format!(
        "{url}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-egress/providers/Microsoft.Compute/virtualMachineScaleSets/gw-vmss?api-version=2024-07-01"
    );
    let r = http.get(&vmss).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("etag"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["tags"]["aks-managed-poolName"], "gwpool");
    assert_eq!(body["sku"]["capacity"], 2);

    let status = Command::new("kill")
        .args(["-TERM", &guard.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_exit(&mut guard.0, Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn missing_seed_file_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--seed", "/nonexistent/seed.yaml", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed to read the seed file /nonexistent/seed.yaml"),
        "{err}"
    );
}

#[test]
fn help_documents_the_default_inventory() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "00000000-0000-0000-0000-000000000000",
        "rg-egress",
        "10.0.0.0/24",
        "gw-vmss",
        "--fault-rate",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}: {text}");
    }
}

#[test]
fn tls_url_file_and_response_forms_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("emu-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url_file = dir.join("arm-url");
    let child = Command::new(BIN)
        .args(["--port", "0", "--tls", "--page-size", "1"])
        .arg("--url-file")
        .arg(&url_file)
        .args(["--response-form", "VirtualMachineScaleSets.Update=location"])
        .args(["--response-form", "*Delete=done"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Stop(child);
    let url = wait_for_file(&mut guard, &url_file);
    assert!(url.trim().starts_with("https://127.0.0.1:"), "{url}");
    let ca = std::fs::read_to_string(dir.join("arm-url.ca.pem")).unwrap();
    assert!(
        ca.contains("BEGIN CERTIFICATE"),
        "the CA is written before the URL"
    );
    // curl is on these machines (hack/install-deps.sh installs it): the CA validates.
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("arm-url.ca.pem"))
        .arg(format!("{}/admin/responseForms", url.trim()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forms: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(forms["VirtualMachineScaleSets.Update"]["form"], "location");
    assert_eq!(forms["LoadBalancers.Delete"]["form"], "done");
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);

    let out = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--response-form",
            "VirtualMachineScaleSets.Update=accepted",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("documents no 'accepted'"), "{err}");
    let out = Command::new(BIN)
        .args(["--port", "0", "--tls"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "--tls needs somewhere to write the CA"
    );
}
