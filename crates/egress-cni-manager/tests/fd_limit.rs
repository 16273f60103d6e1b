//! The real `egress-cni-manager` binary with its open files capped at 64 (`ulimit -n 64` for
//! that process only), against the in-memory API server, while 100 silent root connections
//! are held open on its socket and re-opened as soon as it closes one. Real plugin requests
//! must still be answered within 1 s, and the log must stay small (it used to grow by
//! ~10 MB/s of identical accept warnings while requests waited for seconds). Root only: the
//! binary admits only UID 0 on its socket (fails when `CI=true` and not root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use egress_apiserver::{ApiServer, ServerConfig};
use egress_cni_proto::{Client, PodRef};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const NODE: &str = "node-fd";
const IDLE: usize = 100;
/// Largest log growth accepted while the flood runs (a few rate-limited lines).
const LOG_BUDGET: u64 = 8 * 1024;

fn root_or_skip() -> bool {
    if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "fd_limit needs root (the manager admits only UID 0 on its socket)"
    );
    eprintln!("SKIPPED: fd_limit needs root");
    false
}

async fn create<K>(api: &Api<K>, v: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();
}

/// The manager under `ulimit -n 64`, stdout and stderr into `log`.
fn spawn_manager(dir: &Path, kubeconfig: &Path, log: &Path, http: &str) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_egress-cni-manager"))
        .args(["--node-name", NODE, "--socket-path"])
        .arg(dir.join("run/cni.sock"))
        .arg("--cni-conf-dir")
        .arg(dir.join("net.d"))
        .args(["--http-addr", http, "--conflist-poll-ms", "200"])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// Holds `n` silent connections open, re-opening each one the manager closes or answers.
/// Returns how many connections it opened in all.
fn flood(path: PathBuf, n: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut conns: Vec<Option<UnixStream>> = (0..n).map(|_| None).collect();
        let mut opened = 0;
        while !stop.load(Ordering::Relaxed) {
            for c in conns.iter_mut() {
                let gone = match c {
                    None => true,
                    Some(s) => !matches!(
                        s.read(&mut [0u8; 512]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                    ),
                };
                if gone {
                    *c = UnixStream::connect(&path).ok();
                    if let Some(s) = c {
                        s.set_nonblocking(true).unwrap();
                        opened += 1;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        opened
    })
}

fn metrics(http: &str) -> String {
    let mut s = std::net::TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_real_requests_are_answered_within_a_second_and_the_log_stays_small() {
    if !root_or_skip() {
        return;
    }
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/crd");
    let api = ApiServer::start(ServerConfig::default().with_crds(crds))
        .await
        .unwrap();
    let client = api.client().unwrap();
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}}),
    )
    .await;
    create(
        &Api::<Node>::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}),
    )
    .await;
    create(
        &Api::<Pod>::namespaced(client.clone(), "ns1"),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "ns1",
                         "annotations": {"kubernetes.azure.com/static-gateway-configuration": "sgc1"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}}),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net.d")).unwrap();
    std::fs::write(
        dir.path().join("net.d/10-ptp.conflist"),
        r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"ptp"}]}"#,
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let http = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let log = dir.path().join("manager.log");
    let mut manager = spawn_manager(dir.path(), &kubeconfig, &log, &http);
    let socket = dir.path().join("run/cni.sock");
    let plugin = Client::new(&socket, Duration::from_secs(5));
    let web = PodRef {
        namespace: "ns1".into(),
        name: "web".into(),
        uid: None,
    };
    let ask = {
        let plugin = plugin.clone();
        let web = web.clone();
        move || {
            let t = Instant::now();
            let got = plugin.pod_gateway(web.clone());
            (t.elapsed(), got)
        }
    };
    // Ready: the pod cache answers (the client waits for the socket to appear).
    let (_, first) = tokio::task::spawn_blocking(ask.clone()).await.unwrap();
    assert_eq!(first.unwrap().gateway.as_deref(), Some("sgc1"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", manager.id())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("64")),
        "{limits}"
    );

    let before = std::fs::metadata(&log).unwrap().len();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(socket.clone(), IDLE, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let (took, got) = tokio::task::spawn_blocking(ask.clone()).await.unwrap();
        let got = got.unwrap_or_else(|e| panic!("request {i} under the flood: {e}"));
        assert_eq!(got.gateway.as_deref(), Some("sgc1"));
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let grown = std::fs::metadata(&log).unwrap().len() - before;
    stop.store(true, Ordering::Relaxed);
    let opened = tokio::task::spawn_blocking(move || flooder.join().unwrap())
        .await
        .unwrap();
    let text = metrics(&http);
    let busy = metric(&text, "egress_cni_manager_busy_replies_total");
    eprintln!(
        "[fd_limit] {opened} silent connections opened; slowest of 20 requests {slowest:?}; log grew {grown} bytes; busy answers {busy}"
    );
    assert!(manager.try_wait().unwrap().is_none(), "the manager died");
    assert!(
        opened > IDLE,
        "the flood kept re-opening connections ({opened})"
    );
    assert!(busy > 0.0, "the connection cap was reached: {text}");
    assert!(
        slowest < Duration::from_secs(1),
        "a request took {slowest:?} under the flood"
    );
    assert!(
        grown < LOG_BUDGET,
        "log grew by {grown} bytes in ~4 s: {}",
        String::from_utf8_lossy(
            &std::fs::read(&log).unwrap()[before as usize..][..2000.min(grown as usize)]
        )
    );
    let whole = std::fs::read_to_string(&log).unwrap();
    assert!(
        !whole.contains('\u{1b}'),
        "colour codes in a log file: {whole}"
    );
    let _ = sigterm(&manager);
    manager.wait().unwrap();
    api.shutdown().await;
}

/// SIGTERM to the manager (a graceful stop, as the kubelet does).
fn sigterm(child: &Child) -> std::io::Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map(|_| ())
}
