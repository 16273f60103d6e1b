//! Pods' kubelet subresources (`log`, `exec`, `attach`, `portforward`) are handed to the
//! configured kubelet on the kubelet API's paths, upgrades are spliced through, and the
//! server answers clearly when there is no kubelet, no node, or the local user is not allowed.

use std::convert::Infallible;
use std::path::PathBuf;

use bytes::Bytes;
use egress_apiserver::{KubeletAddr, KubeletConfig, ServerConfig};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Kubectl, TempDir, start_with};

/// A kubelet answering logs with the path and query it got, and echoing an upgraded
/// connection upper-cased.
fn fake_kubelet(socket: PathBuf) {
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|mut req: hyper::Request<Incoming>| async move {
                        let seen =
                            format!("{}?{}", req.uri().path(), req.uri().query().unwrap_or(""));
                        if req.headers().contains_key("upgrade") {
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                let mut io = TokioIo::new(on.await.unwrap());
                                let mut buf = [0u8; 4];
                                io.read_exact(&mut buf).await.unwrap();
                                io.write_all(&buf.to_ascii_uppercase()).await.unwrap();
                            });
                            let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                            *resp.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                            resp.headers_mut()
                                .insert("upgrade", "x-test".parse().unwrap());
                            resp.headers_mut()
                                .insert("connection", "Upgrade".parse().unwrap());
                            return Ok::<_, Infallible>(resp);
                        }
                        Ok(hyper::Response::new(Full::new(Bytes::from(seen))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
}

async fn pod(server: &egress_apiserver::RunningApiServer, name: &str, node: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(server.client().unwrap(), "default");
    let pod = serde_json::from_value(serde_json::json!({"metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

#[tokio::test]
async fn logs_and_exec_reach_the_kubelet() {
    let dir = TempDir::new();
    let socket = dir.path().join("kubelet.sock");
    fake_kubelet(socket.clone());
    let uid = nix_uid();
    let server = start_with(ServerConfig {
        kubelet: KubeletConfig {
            addr: Some(KubeletAddr::Unix(socket)),
            allowed_uid: Some(uid),
        },
        ..ServerConfig::default()
    })
    .await;
    pod(&server, "p", Some("node-a")).await;
    pod(&server, "unscheduled", None).await;
    let k = Kubectl::new(&server);
    let out = k.ok(&["logs", "p", "--tail=5"]).await;
    assert!(
        out.starts_with("/containerLogs/default/p/c?") && out.contains("tailLines=5"),
        "{out}"
    );
    let bad = k.run(&["logs", "p", "-c", "nope"]).await;
    assert!(
        bad.stderr.contains("container nope is not valid for pod p"),
        "{}",
        bad.stderr
    );
    let pending = k.run(&["logs", "unscheduled"]).await;
    assert!(
        pending
            .stderr
            .contains("pod unscheduled does not have a host assigned"),
        "{}",
        pending.stderr
    );

    // An upgraded exec connection is spliced to the kubelet's.
    let mut conn = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(b"GET /api/v1/namespaces/default/pods/p/exec?command=ls HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let n = conn.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    conn.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    conn.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"PING");
}

#[tokio::test]
async fn other_users_and_servers_without_a_kubelet_are_refused() {
    let server = start_with(ServerConfig {
        kubelet: KubeletConfig {
            addr: Some(KubeletAddr::Tcp("127.0.0.1:9".into())),
            allowed_uid: Some(nix_uid().wrapping_add(4242)),
        },
        ..ServerConfig::default()
    })
    .await;
    pod(&server, "p", Some("node-a")).await;
    let k = Kubectl::new(&server);
    let denied = k.run(&["logs", "p"]).await;
    assert!(
        denied.stderr.contains("Forbidden")
            && denied
                .stderr
                .contains(&format!("this connection is from user ID {}", nix_uid())),
        "{}",
        denied.stderr
    );
    let bare = start_with(ServerConfig::default()).await;
    pod(&bare, "p", Some("node-a")).await;
    let k = Kubectl::new(&bare);
    let none = k.run(&["logs", "p"]).await;
    assert!(
        none.stderr.contains("started without --kubelet-url"),
        "{}",
        none.stderr
    );
}

/// This process's user ID (from /proc, without a dependency for one call).
fn nix_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap()
}
