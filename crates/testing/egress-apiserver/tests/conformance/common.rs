//! Helpers shared by the conformance tests: starting a server with the fixture CRDs, a
//! self-removing scratch directory, running kubectl against the server, raw HTTP requests, and
//! waiting on a condition with a bounded timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

/// The fixtures directory of this crate.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A server serving the fixture CRDs (widgets.example.com, gadgets.example.com).
pub async fn start() -> RunningApiServer {
    start_with(ServerConfig::default()).await
}

/// A server with a custom config plus the fixture CRDs.
pub async fn start_with(config: ServerConfig) -> RunningApiServer {
    ApiServer::start(config.with_crds(fixture("crds")))
        .await
        .expect("server starts")
}

/// The Widget resource of the fixture CRD.
pub fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    )
}

/// A Widget object.
pub fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }))
    .expect("valid widget")
}

/// Polls `check` every 20 ms until it yields a value, failing after `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "egress-apiserver-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kubectl bound to one server, with its own kubeconfig and discovery cache.
pub struct Kubectl {
    dir: TempDir,
}

/// The result of one kubectl run.
pub struct KubectlOutput {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(server: &RunningApiServer) -> Self {
        let dir = TempDir::new();
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("write kubeconfig");
        Self { dir }
    }

    /// Runs kubectl with `args` (blocking work off the runtime threads).
    pub async fn run(&self, args: &[&str]) -> KubectlOutput {
        let mut cmd = std::process::Command::new("/usr/bin/kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("kubectl runs");
        KubectlOutput {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl and fails the test when it fails.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed: {}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

/// A raw HTTP request to the server; returns (status, headers, body).
pub async fn raw(
    server: &RunningApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, http::HeaderMap, String) {
    // No client-side retries: tests look at exactly what the server answered.
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.unwrap_or("").as_bytes().to_vec())
        .expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}
