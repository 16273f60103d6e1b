//! The HTTP server: accept loop with graceful shutdown, request decoding, fault injection before
//! dispatch, request logging, and encoding of answers. A dropped-connection fault makes the
//! service fail, which makes hyper close the connection without answering.

use crate::faults::FaultKind;
use crate::http::{Reply, Req};
use crate::request_log::RequestEntry;
use crate::router::{self, Target};
use crate::state::State;
use crate::tls::Tls;
use crate::{admin, api_versions, imds, resources};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The state shared by all connections.
pub(crate) type Shared = Arc<Mutex<State>>;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The error that makes hyper drop a connection (fault injection).
#[derive(Debug)]
pub(crate) struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves (over TLS when `tls` is set) until `shutdown` flips, then lets open connections
/// finish (bounded).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Shared,
    tls: Option<Tls>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let http = hyper::server::conn::http1::Builder::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                let svc = service_fn(move |req| handle(shared.clone(), peer, req));
                match &tls {
                    None => {
                        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                        tokio::spawn(async move {
                            if let Err(e) = conn.await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        });
                    }
                    Some(tls) => {
                        // The handshake runs in the connection's task so a slow client cannot
                        // stall the accept loop; such connections are not tracked for shutdown
                        // until the handshake is done.
                        let acceptor = tls.acceptor.clone();
                        let http = http.clone();
                        let watcher = graceful.watcher();
                        tokio::spawn(async move {
                            let stream = match acceptor.accept(stream).await {
                                Ok(s) => s,
                                Err(e) => {
                                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                    return;
                                }
                            };
                            let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), svc));
                            if let Err(e) = conn.await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        });
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!("connections still open after 5 s; closing anyway");
        }
    }
}

async fn handle(
    shared: Shared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let (parts, body) = req.into_parts();
    let head = parts.method == hyper::Method::HEAD;
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Ok(encode(
                Reply::json(
                    413,
                    json!({"error": {"code": "RequestEntityTooLarge", "message": "The request body is too large or could not be read."}}),
                ),
                head,
            ));
        }
    };
    let path = parts.uri.path().to_owned();
    let segs = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let req = Req {
        method: parts.method.as_str().to_ascii_uppercase(),
        path,
        segs,
        query,
        headers,
        body,
        peer: Some(peer),
    };
    match process(&shared, &req) {
        Some(reply) => Ok(encode(reply, head)),
        None => Err(DroppedConnection),
    }
}

/// Handles one request under the state lock; `None` means "drop the connection".
fn process(shared: &Shared, req: &Req) -> Option<Reply> {
    let target = router::route(&req.segs);
    match &target {
        Target::Healthz => return Some(Reply::json(200, json!({"status": "ok"}))),
        Target::Admin(segs) => return Some(admin::handle(shared, req, segs)),
        _ => {}
    }
    let op = target.operation(&req.method);
    let mut st = lock(shared);
    let mut entry = RequestEntry {
        method: req.method.clone(),
        path: req.path.clone(),
        operation: op.clone(),
        status: 0,
        fault: None,
    };
    if let Some(inj) = st.faults.take(&req.method, &req.path, &op, false) {
        entry.fault = Some(format!("{:?}", inj.kind));
        let reply = match inj.kind {
            FaultKind::Throttle => {
                let secs = inj.rule.retry_after.unwrap_or(1);
                Reply::json(
                    429,
                    json!({"error": {"code": "TooManyRequests", "message": format!("The request is being throttled (injected by the emulator). Retry after {secs} seconds.")}}),
                )
                .header("Retry-After", secs.to_string())
            }
            FaultKind::ServerError => Reply::json(
                500,
                json!({"error": {"code": "InternalServerError", "message": "An internal error occurred (injected by the emulator)."}}),
            ),
            _ => {
                st.log.record(entry);
                return None;
            }
        };
        entry.status = reply.status;
        st.log.record(entry);
        return Some(reply);
    }
    let reply = match &target {
        Target::Imds { vm, rest } => imds::handle(&st, req, vm.as_deref(), rest),
        Target::Token { tenant } => imds::token(&st, req, tenant),
        _ => arm(&mut st, req, &target, &op),
    };
    entry.status = reply.status;
    st.log.record(entry);
    Some(reply)
}

fn arm(st: &mut State, req: &Req, target: &Target, op: &str) -> Reply {
    if st.settings.require_auth
        && !req
            .header("authorization")
            .is_some_and(|a| a.to_ascii_lowercase().starts_with("bearer "))
    {
        return crate::error::ArmError::new(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or not a bearer token.",
        )
        .into();
    }
    if !matches!(target, Target::NotFound) {
        let checked =
            api_versions::present(req.api_version()).and_then(|v| match target.api_family() {
                Some(family) => api_versions::check(v, family, &st.settings.location),
                None => Ok(()),
            });
        if let Err(e) = checked {
            return e.into();
        }
    }
    resources::dispatch(st, req, target, op)
}

fn encode(reply: Reply, head: bool) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("x-ms-request-id", uuid::Uuid::new_v4().to_string())
        .header(
            "x-ms-correlation-request-id",
            uuid::Uuid::new_v4().to_string(),
        );
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match &reply.body {
        Some(_) if head => Bytes::new(),
        Some(v) => {
            builder = builder.header("Content-Type", "application/json; charset=utf-8");
            Bytes::from(serde_json::to_vec(v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "failed to build a response");
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
