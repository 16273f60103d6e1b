//! The pod subresources a real API server hands to the pod's kubelet: `log`, `exec`, `attach`
//! and `portforward`. The server knows no nodes' addresses; it is configured with one kubelet
//! endpoint (TCP or a unix socket) serving every node — the simulator's kubelet — and
//! forwards the request there on the kubelet API's paths (`/containerLogs/NS/POD/CONTAINER`,
//! `/exec/...`, `/attach/...`, `/portForward/NS/POD`) with its query, headers and upgrade:
//! a `101 Switching Protocols` answer (WebSocket or SPDY streams of exec, attach and
//! port-forward) is spliced byte for byte between client and kubelet, as kube-apiserver's
//! upgrade-aware proxy does. Because these subresources run commands as the kubelet's user
//! and the server has no authentication, a server can be limited to one local user for them:
//! the connection's owner is looked up in `/proc/net/tcp` (kubectl sends no credentials to a
//! plain-HTTP server, so a token could not do it).

use std::path::PathBuf;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::ApiError;
use crate::http::{Body, Resp, full};
use crate::route::ResourcePath;
use crate::server::Shared;

/// Where the kubelet answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletAddr {
    /// `http://HOST:PORT`.
    Tcp(String),
    /// `unix:/path/to/socket`.
    Unix(PathBuf),
}

impl std::str::FromStr for KubeletAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Self::Unix(PathBuf::from(path.trim_start_matches("//"))));
        }
        match s.strip_prefix("http://") {
            Some(hostport) if !hostport.is_empty() => {
                Ok(Self::Tcp(hostport.trim_end_matches('/').to_string()))
            }
            _ => Err(format!(
                "kubelet address {s:?} must be http://HOST:PORT or unix:/path/to/socket"
            )),
        }
    }
}

/// How the server reaches kubelets, and who may use these subresources.
#[derive(Debug, Clone, Default)]
pub struct KubeletConfig {
    /// The kubelet of every node; `None`: these subresources answer that there is none.
    pub addr: Option<KubeletAddr>,
    /// Only connections from this user ID may use them (`None`: anyone, as every other
    /// request).
    pub allowed_uid: Option<u32>,
}

/// The addresses of a client's TCP connection.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// Ours.
    pub local: std::net::SocketAddr,
}

/// `/proc/net/tcp`'s form of an IPv4 socket address (`0100007F:1F90`).
fn proc_addr(a: std::net::SocketAddr) -> Option<String> {
    match a {
        std::net::SocketAddr::V4(v4) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        )),
        std::net::SocketAddr::V6(_) => None,
    }
}

/// The user owning the client end of `conn` (a connection on this machine), from a
/// `/proc/net/tcp` table.
pub fn peer_uid(table: &str, conn: Conn) -> Option<u32> {
    let (client, server) = (proc_addr(conn.peer)?, proc_addr(conn.local)?);
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&client.as_str()) && f.get(2) == Some(&server.as_str()))
            .then(|| f.get(7)?.parse().ok())
            .flatten()
    })
}

fn check_user(allowed: u32, conn: Option<Conn>, name: &str) -> Result<(), ApiError> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let uid = conn.and_then(|c| peer_uid(&table, c));
    if uid == Some(allowed) {
        return Ok(());
    }
    let who = uid.map_or_else(|| "an unknown user".to_string(), |u| format!("user ID {u}"));
    Err(ApiError::forbidden(format!(
        "pods \"{name}\" is forbidden: log, exec, attach and port-forward run as the kubelet's user and are allowed only to user ID {allowed} on this machine (this connection is from {who})"
    )))
}

/// The kubelet API path of a pod subresource request.
fn kubelet_path(sub: &str, ns: &str, pod: &str, container: &str) -> String {
    match sub {
        "log" => format!("/containerLogs/{ns}/{pod}/{container}"),
        "portforward" => format!("/portForward/{ns}/{pod}"),
        other => format!("/{other}/{ns}/{pod}/{container}"),
    }
}

/// The container a request names, or the pod's only container (the real server's rule).
fn container_of(pod: &Value, name: &str, query: Option<&str>) -> Result<String, ApiError> {
    let asked = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "container")
            .map(|(_, v)| v.into_owned())
    });
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    match asked.filter(|c| !c.is_empty()) {
        Some(c) if containers.contains(&c.as_str()) => Ok(c),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].to_string()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            containers.join(" ")
        ))),
    }
}

async fn connect(
    addr: &KubeletAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>, String> {
    macro_rules! handshake {
        ($stream:expr) => {{
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new($stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn.with_upgrades());
            Ok(sender)
        }};
    }
    match addr {
        KubeletAddr::Tcp(hostport) => {
            handshake!(
                tokio::net::TcpStream::connect(hostport)
                    .await
                    .map_err(|e| format!("{hostport}: {e}"))?
            )
        }
        KubeletAddr::Unix(path) => {
            handshake!(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?
            )
        }
    }
}

/// Serves `pods/NAME/{log,exec,attach,portforward}` by forwarding to the kubelet.
pub async fn serve(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    path: &ResourcePath,
) -> Result<Resp, ApiError> {
    let cfg = &shared.kubelet;
    let sub = path.subresource.clone().unwrap_or_default();
    let ns = path.namespace.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    if let Some(uid) = cfg.allowed_uid {
        check_user(uid, req.extensions().get::<Conn>().copied(), &name)?;
    }
    let pod = {
        let world = shared.lock_world();
        let res = world
            .resource("", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        world
            .store
            .get(&crate::world::key_for(&res, Some(&ns), &name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.subject(), &name))?
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("pod {name} does not have a host assigned")))?
        .to_string();
    let query = req.uri().query().map(str::to_string);
    let container = container_of(&pod, &name, query.as_deref())?;
    let addr = cfg.addr.clone().ok_or_else(|| {
        ApiError::bad_request(format!(
            "no kubelet serves node {node}: egress-apiserver was started without --kubelet-url, so pods/{sub} is not available"
        ))
    })?;
    let mut target = kubelet_path(&sub, &ns, &name, &container);
    if let Some(q) = &query {
        target = format!("{target}?{q}");
    }
    let upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, 1024 * 1024)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("failed to read request body: {e}")))?
        .to_bytes();
    let mut out = Request::builder().method(parts.method).uri(&target);
    for (k, v) in &parts.headers {
        if k != header::AUTHORIZATION && k != header::HOST {
            out = out.header(k, v);
        }
    }
    let out = out
        .header(header::HOST, HeaderValue::from_static("kubelet"))
        .header("x-egress-node", node.as_str())
        .body(Full::new(body))
        .map_err(|e| ApiError::internal(format!("bad kubelet request: {e}")))?;
    let mut sender = connect(&addr).await.map_err(|e| {
        ApiError::new(
            502,
            "InternalError",
            format!("failed to reach the kubelet of node {node}: {e}"),
        )
    })?;
    let mut resp = sender.send_request(out).await.map_err(|e| {
        ApiError::new(
            502,
            "InternalError",
            format!("the kubelet of node {node} failed: {e}"),
        )
    })?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let kubelet_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(client), Ok(kubelet)) = (upgrade.await, kubelet_side.await) else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(
                &mut TokioIo::new(client),
                &mut TokioIo::new(kubelet),
            )
            .await;
        });
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, full(bytes::Bytes::new())));
    }
    Ok(resp.map(|b| -> Body { b.map_err(std::io::Error::other).boxed_unsync() }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_and_paths() {
        assert_eq!(
            "http://127.0.0.1:10250".parse(),
            Ok(KubeletAddr::Tcp("127.0.0.1:10250".into()))
        );
        assert_eq!(
            "unix:/run/k.sock".parse(),
            Ok(KubeletAddr::Unix("/run/k.sock".into()))
        );
        assert!("https://x".parse::<KubeletAddr>().is_err());
        assert_eq!(kubelet_path("log", "ns", "p", "c"), "/containerLogs/ns/p/c");
        assert_eq!(kubelet_path("exec", "ns", "p", "c"), "/exec/ns/p/c");
        assert_eq!(
            kubelet_path("portforward", "ns", "p", "c"),
            "/portForward/ns/p"
        );
    }

    #[test]
    fn the_connections_owner_comes_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1\n\
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1\n";
        let conn = Conn {
            peer: "127.0.0.1:54321".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
        };
        assert_eq!(peer_uid(table, conn), Some(1000));
        let other = Conn {
            peer: "127.0.0.1:1".parse().unwrap(),
            ..conn
        };
        assert_eq!(peer_uid(table, other), None);
        assert!(
            check_user(0, None, "p")
                .unwrap_err()
                .message
                .contains("allowed only to user ID 0")
        );
    }

    #[test]
    fn containers_default_to_the_only_one() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(container_of(&one, "p", None).unwrap(), "a");
        assert_eq!(container_of(&one, "p", Some("command=ls")).unwrap(), "a");
        assert!(
            container_of(&one, "p", Some("container=b"))
                .unwrap_err()
                .message
                .contains("container b is not valid")
        );
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(
            container_of(&two, "p", None)
                .unwrap_err()
                .message
                .contains("choose one of: [a b]")
        );
        assert_eq!(container_of(&two, "p", Some("container=b")).unwrap(), "b");
    }
}
