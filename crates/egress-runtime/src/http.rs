//! A minimal HTTP/1 server on plain hyper (a handful of fixed routes need no framework): it
//! maps a request path to an [`Answer`] and stops accepting when a shutdown future completes.
//! It owns no routes itself; see [`crate::health`] for the health/metrics ones.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// An answer: status, content type, body.
pub type Answer = (StatusCode, &'static str, String);

/// What happens to connections still open when the server stops accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// They finish on their own tasks.
    Finish,
    /// They are dropped at once.
    Abort,
}

fn respond((status, content_type, body): Answer) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves `answer(path)` on `listener` until `shutdown` completes; connections in flight
/// finish on their own tasks.
pub async fn serve<F>(listener: TcpListener, answer: F, shutdown: impl Future<Output = ()>)
where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    serve_with(listener, answer, shutdown, InFlight::Finish).await;
}

/// Serves `answer(path)` on `listener` until `shutdown` completes, then treats open
/// connections as `in_flight` says.
pub async fn serve_with<F>(
    listener: TcpListener,
    answer: F,
    shutdown: impl Future<Output = ()>,
    in_flight: InFlight,
) where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    let answer = move |path: String| std::future::ready(answer(&path));
    serve_async(listener, answer, shutdown, in_flight).await;
}

/// As [`serve_with`], for answers that must wait for something (a device read): `answer`
/// gets the request path and returns the answer's future.
pub async fn serve_async<F, Fut>(
    listener: TcpListener,
    answer: F,
    shutdown: impl Future<Output = ()>,
    in_flight: InFlight,
) where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let answer = Arc::new(answer);
    // Dropping the sender on return wakes every connection task waiting to abort.
    let (_stopped_tx, stopped_rx) = watch::channel(());
    tokio::pin!(shutdown);
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
        let mut stopped = stopped_rx.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let answered = answer(req.uri().path().to_owned());
                async move { Ok::<_, Infallible>(respond(answered.await)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            let result = match in_flight {
                InFlight::Finish => conn.await,
                InFlight::Abort => tokio::select! {
                    r = conn => r,
                    _ = stopped.changed() => Ok(()),
                },
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection failed");
            }
        });
    }
}
