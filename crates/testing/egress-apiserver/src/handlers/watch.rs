//! `watch`: a chunked stream of JSON event lines. Starts with synthetic ADDED events (no
//! resourceVersion, `0`, or `sendInitialEvents`), else replays retained history after the given
//! resourceVersion (410 `Expired` as an ERROR event when it is older than the history), then
//! forwards live events with selector transitions (a label change out of the selector is a
//! DELETED), periodic BOOKMARKs, `timeoutSeconds`, and fault-injected connection drops.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::ApiRequest;
use super::read::Selectors;
use crate::error::ApiError;
use crate::http::{Body, Resp};
use crate::server::Shared;
use crate::store::{EventType, StoredEvent};
use crate::table::{Format, format_from_accept, partial, table};

/// The real server's default watch duration bound (`--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    sel: Selectors,
}

impl Filter {
    fn transform(&self, ev: &StoredEvent) -> Option<&'static str> {
        if ev.key.group != self.group
            || ev.key.resource != self.resource
            || self
                .namespace
                .as_ref()
                .is_some_and(|n| *n != ev.key.namespace)
            || self.name.as_ref().is_some_and(|n| *n != ev.key.name)
        {
            return None;
        }
        let now = self.sel.matches(&ev.object);
        let before = ev.old.as_ref().is_some_and(|o| self.sel.matches(o));
        match ev.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => before.then_some("DELETED"),
            EventType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }
    }
}

struct Presenter {
    api_version: String,
    kind: String,
    format: Format,
    res: Arc<crate::resource::ResourceInfo>,
    version: String,
    first_table: bool,
}

impl Presenter {
    fn object(&mut self, obj: Value) -> Value {
        let obj = self.res.present(obj, &self.version);
        match &self.format {
            Format::Object => obj,
            Format::Metadata(v) => partial(&obj, v),
            Format::Table(v) => {
                let defs = std::mem::replace(&mut self.first_table, false);
                table(&self.res, &self.version, v, &[obj], None, json!({}), defs)
            }
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta})
    }
}

fn line(kind: &str, object: Value) -> Result<Frame<Bytes>, std::io::Error> {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(Frame::data(Bytes::from(bytes)))
}

fn stream_response(rx: mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>) -> Resp {
    let mut rx = rx;
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let body: Body = StreamBody::new(stream).boxed_unsync();
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn watch(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let filter = Filter {
        group: req.res.storage_group().to_string(),
        resource: req.res.plural.clone(),
        namespace: req.namespace().map(str::to_string),
        name: req.path.name.clone(),
        sel: Selectors::of(req)?,
    };
    let start = match req.query.resource_version.as_deref().unwrap_or("") {
        "" | "0" => None,
        s => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {s:?}")))?,
        ),
    };
    let initial = start.is_none() || req.query.send_initial_events;
    let mut presenter = Presenter {
        api_version: req.res.api_version(req.version()),
        kind: req.res.kind.clone(),
        format: format_from_accept(&req.accept),
        res: req.res.clone(),
        version: req.version().to_string(),
        first_table: true,
    };
    let (snapshot, past, live, from) = {
        let world = shared.lock_world();
        let current = world.store.current_rv();
        let snapshot: Vec<Value> = if initial {
            world
                .store
                .list(req.res.storage_group(), &req.res.plural, req.namespace())
                .filter(|(k, v)| {
                    filter.name.as_ref().is_none_or(|n| *n == k.name) && filter.sel.matches(v)
                })
                .map(|(_, v)| v.clone())
                .collect()
        } else {
            Vec::new()
        };
        let from = if initial {
            current
        } else {
            start.unwrap_or(current)
        };
        match world.store.subscribe_from(from) {
            Ok((past, live)) => (snapshot, past, live, from),
            Err(too_old) => {
                let status = ApiError::expired(format!(
                    "too old resource version: {from} ({})",
                    too_old.oldest
                ))
                .to_status();
                let (tx, rx) = mpsc::channel(1);
                let _ = tx.try_send(line("ERROR", status));
                return Ok(stream_response(rx));
            }
        }
    };
    let (tx, rx) = mpsc::channel(256);
    let bookmarks = req.query.allow_watch_bookmarks;
    let send_initial = req.query.send_initial_events;
    let timeout = req
        .query
        .timeout_seconds
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let interval = shared.bookmark_interval;
    let mut drops = shared.faults.watch_drops();
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        for obj in snapshot {
            if tx.send(line("ADDED", presenter.object(obj))).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks {
            let _ = tx
                .send(line("BOOKMARK", presenter.bookmark(from, true)))
                .await;
        }
        let mut last = from;
        for ev in past {
            last = ev.rv;
            if let Some(t) = filter.transform(&ev)
                && tx
                    .send(line(t, presenter.object(ev.object.clone())))
                    .await
                    .is_err()
            {
                return;
            }
        }
        forward(ForwardCtx {
            live,
            tx,
            filter,
            presenter,
            last,
            bookmarks,
            interval,
            timeout,
            drops: &mut drops,
            shutdown: &mut shutdown,
        })
        .await;
    });
    Ok(stream_response(rx))
}

struct ForwardCtx<'a> {
    live: broadcast::Receiver<Arc<StoredEvent>>,
    tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    filter: Filter,
    presenter: Presenter,
    last: u64,
    bookmarks: bool,
    interval: Duration,
    timeout: Duration,
    drops: &'a mut tokio::sync::watch::Receiver<u64>,
    shutdown: &'a mut tokio::sync::watch::Receiver<bool>,
}

async fn forward(mut c: ForwardCtx<'_>) {
    let deadline = tokio::time::sleep(c.timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(c.interval);
    tick.tick().await;
    c.drops.mark_unchanged();
    loop {
        tokio::select! {
            ev = c.live.recv() => match ev {
                Ok(ev) => {
                    if ev.rv <= c.last {
                        continue;
                    }
                    c.last = ev.rv;
                    if let Some(t) = c.filter.transform(&ev) {
                        let obj = c.presenter.object(ev.object.clone());
                        if c.tx.send(line(t, obj)).await.is_err() {
                            return;
                        }
                    }
                }
                // A watcher too slow for the broadcast buffer is closed; the client resumes
                // from its last resourceVersion and the history fills the gap.
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick(), if c.bookmarks => {
                if c.tx.send(line("BOOKMARK", c.presenter.bookmark(c.last, false))).await.is_err() {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = c.drops.changed() => {
                let _ = c.tx.send(Err(std::io::Error::other("watch dropped by fault injection"))).await;
                return;
            }
            _ = c.shutdown.changed() => return,
            _ = c.tx.closed() => return,
        }
    }
}
