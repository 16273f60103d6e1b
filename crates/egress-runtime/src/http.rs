//! A minimal HTTP/1 server on plain hyper (a handful of fixed routes need no framework): it
//! maps a request path to an [`Answer`] (`serve`), or a whole request (its peer, path and
//! headers) to a [`Reply`] that may take its time (`serve_requests`), and stops accepting
//! when a shutdown future completes. It owns no routes itself; see [`crate::health`] for the
//! health/metrics ones.

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

/// A whole response, as [`serve_requests`] handlers return it.
pub type Reply = Response<Full<Bytes>>;

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
    let reply = move |asked: Asked| {
        let answered = answer(asked.path);
        async move { respond(answered.await) }
    };
    serve_requests(listener, reply, shutdown, in_flight).await;
}

/// What a request asked, for servers whose answer depends on more than the path.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The peer's address.
    pub peer: std::net::SocketAddr,
    /// The request path (no query).
    pub path: String,
    /// The request headers.
    pub headers: hyper::HeaderMap,
}

/// An [`Answer`] as a response, with extra headers.
pub fn response(answer: Answer, headers: hyper::HeaderMap) -> Reply {
    let mut r = respond(answer);
    r.headers_mut().extend(headers);
    r
}

/// As [`serve_async`], for answers that depend on who asks and how (`reply` gets the peer,
/// the path and the headers, and returns the whole response).
pub async fn serve_requests<F, Fut>(
    listener: TcpListener,
    reply: F,
    shutdown: impl Future<Output = ()>,
    in_flight: InFlight,
) where
    F: Fn(Asked) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let reply = Arc::new(reply);
    // Dropping the sender on return wakes every connection task waiting to abort.
    let (_stopped_tx, stopped_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "failed to accept a connection");
                continue;
            }
        };
        let reply = reply.clone();
        let mut stopped = stopped_rx.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let replied = reply(Asked {
                    peer,
                    path: req.uri().path().to_owned(),
                    headers: req.headers().clone(),
                });
                async move { Ok::<_, Infallible>(replied.await) }
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
