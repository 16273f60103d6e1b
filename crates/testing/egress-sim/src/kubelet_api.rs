//! The kubelet's HTTP API for every simulated node, on a root-only unix socket the API server
//! is configured with (`--kubelet-url unix:...`): `/containerLogs/NS/POD/CONTAINER` (the
//! pod's kubelet log, or a component's own log for the system pods; `follow`, `tailLines`),
//! `/exec/NS/POD/CONTAINER` (see `exec`) and `/attach/NS/POD/CONTAINER` (the log, live) over
//! WebSocket or SPDY (see `streams`), and `/portForward/NS/POD` (see `portforward`). Errors
//! are `Status` objects, which the API server passes to kubectl as they are.

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
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::exec::{self, ExecRequest, Target};
use crate::portforward;
use crate::streams;
use crate::upgrade::{PF_TUNNEL, Upgrade, spawn_spdy, spdy_accepted, upgrade_of, ws_accepted};

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

/// The answers' body type.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn full(b: impl Into<Bytes>) -> Body {
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
        "attach" => {
            let r = ExecRequest::parse_streams(&query);
            let log = handle.log.clone();
            remote_command(req, r.wanted(), move |channels| attach(log, channels))
        }
        "portForward" => port_forward(req, &handle, pod),
        _ => status(404, "NotFound", &format!("no kubelet endpoint {path}")),
    }
}

/// The pod's network namespace for exec, attach and port-forward, or why there is none.
fn pod_netns(handle: &PodHandle) -> Result<String, String> {
    match (&handle.no_exec, &handle.netns) {
        (None, Some(ns)) => Ok(ns.clone()),
        (Some(why), _) => Err(why.clone()),
        (None, None) => Err("the pod's containers are not running yet".into()),
    }
}

/// `kubectl port-forward`: SPDY (plain, or tunnelled in WebSocket as kubectl 1.31+ does).
fn port_forward(req: Request<Incoming>, handle: &PodHandle, pod: &str) -> Response<Body> {
    let netns = match pod_netns(handle) {
        Ok(ns) => ns,
        Err(why) => return status(400, "BadRequest", &why),
    };
    let pod = pod.to_string();
    let serve = move |w, s| portforward::serve(w, s, netns, pod);
    match upgrade_of(req.headers()) {
        Upgrade::WebSocket { key, protocols } if protocols.iter().any(|p| p == PF_TUNNEL) => {
            spawn_spdy(req, true, serve);
            ws_accepted(&key, PF_TUNNEL)
        }
        Upgrade::Spdy(offered)
            if offered.is_empty() || offered.iter().any(|p| p == portforward::PROTOCOL) =>
        {
            spawn_spdy(req, false, serve);
            spdy_accepted(portforward::PROTOCOL)
        }
        _ => status(
            400,
            "BadRequest",
            "port-forward needs an upgrade to SPDY/3.1 (X-Stream-Protocol-Version: portforward.k8s.io) or to WebSocket with the subprotocol SPDY/3.1+portforward.k8s.io",
        ),
    }
}

/// Accepts a remote-command upgrade (WebSocket v5/v4, or SPDY v4) and runs `session` over
/// it; `wanted` are the streams a SPDY client opens.
fn remote_command<F, Fut>(
    req: Request<Incoming>,
    wanted: streams::Wanted,
    session: F,
) -> Response<Body>
where
    F: FnOnce(streams::Channels) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match upgrade_of(req.headers()) {
        Upgrade::WebSocket { key, protocols } => {
            let Some(chosen) = streams::WS_PROTOCOLS
                .iter()
                .find(|p| protocols.iter().any(|o| o == *p))
            else {
                return status(
                    400,
                    "BadRequest",
                    &format!(
                        "none of the WebSocket subprotocols {protocols:?} is served (v5.channel.k8s.io, v4.channel.k8s.io)"
                    ),
                );
            };
            let v5 = *chosen == streams::WS_PROTOCOLS[0];
            let mut req = req;
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                streams::over_websocket(ws, v5, session).await;
            });
            ws_accepted(&key, chosen)
        }
        Upgrade::Spdy(offered) if offered.iter().any(|p| p == streams::SPDY_PROTOCOL) => {
            spawn_spdy(req, false, move |w, s| {
                streams::over_spdy(w, s, wanted, session)
            });
            spdy_accepted(streams::SPDY_PROTOCOL)
        }
        Upgrade::Spdy(offered) => status(
            403,
            "Forbidden",
            &format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [\"v4.channel.k8s.io\"]"
            ),
        ),
        Upgrade::None => status(
            400,
            "BadRequest",
            "exec and attach need an upgrade to WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) or SPDY/3.1 (v4.channel.k8s.io)",
        ),
    }
}

fn exec_upgrade(
    req: Request<Incoming>,
    handle: &PodHandle,
    pod: &str,
    query: &str,
) -> Response<Body> {
    let r = match ExecRequest::parse(query) {
        Ok(r) => r,
        Err(e) => return status(400, "BadRequest", &e),
    };
    let netns = match pod_netns(handle) {
        Ok(ns) => ns,
        Err(why) => return status(400, "BadRequest", &why),
    };
    let target = Target {
        netns,
        pod: pod.to_string(),
        hosts: handle.hosts.clone(),
    };
    let wanted = r.wanted();
    remote_command(req, wanted, move |(input, output)| {
        exec::session(target, r, input, output)
    })
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
            follow_file(&path, offset, &tx, |b| Ok(Frame::data(Bytes::from(b)))).await;
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

/// `kubectl attach`: the pods run no process of their own, so their "main process" is what
/// their log shows: its lines from now on, until the client goes away. Standard input is
/// accepted and dropped (nothing reads it).
async fn attach(log: PathBuf, (mut input, output): streams::Channels) {
    let offset = tokio::fs::metadata(&log).await.map_or(0, |m| m.len());
    let follow = follow_file(&log, offset, &output, |b| {
        streams::Output::Data(streams::STDOUT, b)
    });
    tokio::pin!(follow);
    loop {
        tokio::select! {
            () = &mut follow => return,
            i = input.recv() => if i.is_none() {
                return;
            },
        }
    }
}

/// Sends what is appended to `path` from `offset` (as `wrap` makes it) until the receiver
/// goes away.
async fn follow_file<T>(
    path: &Path,
    mut offset: u64,
    tx: &tokio::sync::mpsc::Sender<T>,
    wrap: impl Fn(Vec<u8>) -> T,
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
        if tx.send(wrap(buf)).await.is_err() {
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
