//! `/healthz` (process alive), `/readyz` (conflist installed, pod cache synced, socket
//! listening) and `/metrics` (Prometheus text) over plain HTTP/1.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::state::NodeState;

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Answers one request.
pub fn route(path: &str, state: &NodeState, metrics: &Metrics) -> Response<Full<Bytes>> {
    match path {
        "/healthz" | "/livez" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => {
            let reasons = state.not_ready_reasons();
            if reasons.is_empty() {
                respond(StatusCode::OK, "text/plain", "ok\n".into())
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {}\n", reasons.join(", ")),
                )
            }
        }
        "/metrics" => {
            metrics
                .conflist_installed
                .set(i64::from(state.conflist_installed()));
            respond(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.encode(),
            )
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves until cancelled.
pub async fn serve(
    listener: TcpListener,
    state: NodeState,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            () = cancel.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => { tracing::warn!(error = %e, "failed to accept HTTP connection"); continue; }
            },
        };
        let (state, metrics, cancel) = (state.clone(), metrics.clone(), cancel.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = route(req.uri().path(), &state, &metrics);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {},
                () = cancel.cancelled() => {},
            }
        });
    }
}
