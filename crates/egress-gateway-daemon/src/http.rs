//! The daemon's HTTP servers on plain hyper (a handful of fixed routes need no framework):
//! the health/metrics endpoints `/healthz`, `/readyz`, `/metrics`, and a generic `serve` that
//! the LB probe server (`probe`) shares.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// An answer: status, content type, body.
pub type Answer = (StatusCode, &'static str, String);

/// Shared readiness flag (`/readyz`): set after the first full programming of the node,
/// cleared when draining.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets readiness.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Current readiness.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

fn text(status: StatusCode, body: &str) -> Answer {
    (status, "text/plain; charset=utf-8", body.to_owned())
}

/// Answers `/healthz`, `/readyz` and `/metrics`.
pub fn health_answer(path: &str, metrics: &Metrics, ready: &Readiness) -> Answer {
    match path {
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
        "/readyz" if ready.get() => text(StatusCode::OK, "ok\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => match metrics.encode() {
            Ok(body) => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            ),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn respond((status, content_type, body): Answer) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves `answer(path)` on `listener` until `shutdown` completes. Connections in flight
/// finish on their own tasks.
pub async fn serve<F>(listener: TcpListener, answer: F, shutdown: impl Future<Output = ()>)
where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    futures::pin_mut!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "failed to accept a connection");
                continue;
            }
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let r = respond(answer(req.uri().path()));
                async move { Ok::<_, Infallible>(r) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection failed");
            }
        });
    }
}
