//! The health server over real loopback connections: readiness 200/503, the metrics content
//! type, 404 for other paths, and that shutdown stops it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use egress_runtime::{HealthSource, InFlight, Readiness, health_answer, serve, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Source {
    ready: Readiness,
    reasons: Vec<String>,
}

impl HealthSource for Source {
    fn readiness(&self) -> Result<(), Vec<String>> {
        if self.ready.get() {
            Ok(())
        } else {
            Err(self.reasons.clone())
        }
    }
    fn metrics(&self) -> Result<String, std::fmt::Error> {
        Ok("# EOF\n".into())
    }
}

/// Sends `GET path` and returns the raw response (status line, headers, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

async fn start(
    reasons: Vec<String>,
    in_flight: InFlight,
) -> (
    std::net::SocketAddr,
    Readiness,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ready = Readiness::default();
    let source = Source {
        ready: ready.clone(),
        reasons,
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        move |p| health_answer(p, "text/plain", &source),
        async move {
            let _ = stop_rx.await;
        },
        in_flight,
    ));
    (addr, ready, stop_tx, server)
}

#[tokio::test]
async fn readyz_follows_readiness_and_paths_answer() {
    let (addr, ready, stop, server) = start(vec![], InFlight::Finish).await;
    let r = get(addr, "/readyz").await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(r.ends_with("not ready\n"), "{r}");
    ready.set(true);
    let r = get(addr, "/readyz").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("\r\n\r\nok\n"), "{r}");
    let r = get(addr, "/healthz").await;
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("content-type: text/plain\r\n"),
        "{r}"
    );
    let r = get(addr, "/nope").await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn readyz_lists_reasons_and_metrics_are_openmetrics() {
    let reasons = vec![
        "conflist not installed".into(),
        "socket not listening".into(),
    ];
    let (addr, _ready, stop, server) = start(reasons, InFlight::Abort).await;
    let r = get(addr, "/readyz").await;
    assert!(
        r.ends_with("not ready: conflist not installed, socket not listening\n"),
        "{r}"
    );
    let r = get(addr, "/metrics").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"),
        "{r}"
    );
    assert!(r.ends_with("# EOF\n"), "{r}");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_the_server_and_closes_the_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        |_: &str| (hyper::StatusCode::OK, "text/plain", String::new()),
        async move {
            let _ = stop_rx.await;
        },
    ));
    assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server did not stop")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );
}
