//! The kubelet's HTTP API for every simulated node, on a root-only unix socket the API server
//! is configured with (`--kubelet-url unix:...`): `/containerLogs/NS/POD/CONTAINER` (the
//! pod's kubelet log, or a component's own log for the system pods; `follow`, `tailLines`),
//! `/exec/NS/POD/CONTAINER` (WebSocket `v5.channel.k8s.io`, see `exec`), and clear refusals
//! for `attach` (the containers run no process of their own) and `portForward`. Errors are
//! `Status` objects, which the API server passes to kubectl as they are.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::UnixListener;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::exec::{self, ExecRequest, Target};

/// What the kubelet knows of a pod for these endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHandle {
    /// The network namespace its containers run in, once they run.
    pub netns: Option<String>,
    /// Its log.
    pub log: PathBuf,
    /// Why a command cannot run in it (not started, or not in a node of its own).
    pub no_exec: Option<String>,
    /// Its `/etc/hosts` (pods with their own network namespace).
    pub hosts: Option<PathBuf>,
}

/// Finds a pod by namespace and name.
pub type Locator = Arc<dyn Fn(&str, &str) -> Option<PodHandle> + Send + Sync>;

type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A `Status` answer.
fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Binds the socket (mode 0600: the commands run as root) and serves it.
pub fn start(tasks: &mut JoinSet<()>, socket: &Path, locator: Locator) -> std::io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let locator = locator.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let locator = locator.clone();
                    async move { Ok::<_, Infallible>(handle(req, &locator).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(())
}

async fn handle(req: Request<Incoming>, locator: &Locator) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (ns, pod) = match segs.as_slice() {
        [_, ns, pod, ..] => (*ns, *pod),
        _ => return status(404, "NotFound", &format!("no kubelet endpoint {path}")),
    };
    let Some(handle) = locator(ns, pod) else {
        return status(
            404,
            "NotFound",
            &format!("pod {ns}/{pod} is not known to the kubelet"),
        );
    };
    match segs[0] {
        "containerLogs" => logs(&handle, &query).await,
        "exec" => exec_upgrade(req, &handle, pod, &query),
        "attach" => status(
            400,
            "BadRequest",
            "attach is not supported by the simulated kubelet: the pod's containers run no process of their own (use kubectl exec POD -- COMMAND)",
        ),
        "portForward" => status(
            400,
            "BadRequest",
            "port-forward is not supported by the simulated kubelet: use kubectl exec POD -- curl http://localhost:PORT/ (commands run in the pod's network namespace)",
        ),
        _ => status(404, "NotFound", &format!("no kubelet endpoint {path}")),
    }
}

fn exec_upgrade(
    mut req: Request<Incoming>,
    handle: &PodHandle,
    pod: &str,
    query: &str,
) -> Response<Body> {
    let r = match ExecRequest::parse(query) {
        Ok(r) => r,
        Err(e) => return status(400, "BadRequest", &e),
    };
    let netns = match (&handle.no_exec, &handle.netns) {
        (None, Some(ns)) => ns.clone(),
        (Some(why), _) => return status(400, "BadRequest", why),
        (None, None) => {
            return status(
                400,
                "BadRequest",
                "the pod's containers are not running yet",
            );
        }
    };
    let headers = req.headers();
    let is_ws = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect();
    let chosen = exec::PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p));
    let (Some(key), true, Some(chosen)) = (headers.get(header::SEC_WEBSOCKET_KEY), is_ws, chosen)
    else {
        return status(
            400,
            "BadRequest",
            "the simulated kubelet speaks exec over WebSocket (v5.channel.k8s.io or v4.channel.k8s.io) only, as kubectl 1.30+ does by default; SPDY is not supported",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(&mut req);
    let target = Target {
        netns,
        pod: pod.to_string(),
        hosts: handle.hosts.clone(),
    };
    let v5 = *chosen == exec::PROTOCOLS[0];
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        exec::run(ws, target, r, v5).await;
    });
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(chosen),
    );
    resp
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: Option<usize>) -> &str {
    match n {
        None => text,
        Some(0) => "",
        Some(n) => {
            let body = text.strip_suffix('\n').unwrap_or(text);
            match body.rmatch_indices('\n').nth(n - 1) {
                Some((i, _)) => &text[i + 1..],
                None => text,
            }
        }
    }
}

async fn logs(handle: &PodHandle, query: &str) -> Response<Body> {
    let mut follow = false;
    let mut tail_lines = None;
    for (k, v) in exec::form_pairs(query) {
        match k.as_str() {
            "follow" => follow = v == "true" || v == "1",
            "tailLines" => tail_lines = v.parse().ok(),
            "previous" if v == "true" => {
                return status(
                    400,
                    "BadRequest",
                    "previous terminated container not found: the simulated containers never restart",
                );
            }
            _ => {}
        }
    }
    let text = tokio::fs::read_to_string(&handle.log)
        .await
        .unwrap_or_default();
    let first = tail(&text, tail_lines).to_string();
    let mut resp = if !follow {
        Response::new(full(first))
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
        let path = handle.log.clone();
        let offset = text.len() as u64;
        tokio::spawn(async move {
            if tx.send(Ok(Frame::data(Bytes::from(first)))).await.is_err() {
                return;
            }
            follow_file(&path, offset, &tx).await;
        });
        let stream = tokio_stream_from(rx);
        Response::new(BodyExt::boxed(StreamBody::new(stream)))
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Sends what is appended to `path` from `offset` until the client goes away.
async fn follow_file(
    path: &Path,
    mut offset: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if tx.is_closed() {
            return;
        }
        let Ok(mut f) = tokio::fs::File::open(path).await else {
            continue;
        };
        let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0;
        }
        if len == offset || f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
            continue;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).await.is_err() {
            continue;
        }
        offset += buf.len() as u64;
        if tx.send(Ok(Frame::data(Bytes::from(buf)))).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail("a\nb\nc\n", Some(5)), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", None), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc", Some(1)), "c");
        assert_eq!(tail("a\n", Some(0)), "");
    }
}
