//! The HTTP server: accepts connections (HTTP/1.1), routes each request to discovery, OpenAPI,
//! the admin endpoint or a resource handler, applies pause and fault rules to API requests,
//! records them in the request log, and runs the garbage collector after writes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{Request, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::error::ApiError;
use crate::faults::{FaultAction, Faults, hold};
use crate::handlers::{self, ApiRequest};
use crate::http::{Resp, error, full, json};
use crate::identity::UserInfo;
use crate::kubelet_proxy::{self, KubeletConfig};
use crate::query::Query;
use crate::request_log::{RequestLog, RequestRecord};
use crate::route::{self, Route};
use crate::world::World;
use crate::{admin, discovery, openapi, protobuf};

const MAX_BODY: usize = 64 * 1024 * 1024;

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// Objects and served resources.
    pub world: Mutex<World>,
    /// Fault switches.
    pub faults: Arc<Faults>,
    /// Request log.
    pub log: Arc<RequestLog>,
    /// Wakes the garbage collector.
    pub gc: Notify,
    /// Becomes `true` on shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// The listening address.
    pub addr: SocketAddr,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Run the deployment and replicaset controllers after writes.
    pub controllers: bool,
    /// Where pods' log/exec/attach/portforward go.
    pub kubelet: KubeletConfig,
}

impl Shared {
    /// Locks the world (a panicking holder cannot leave it half-written: writes are single
    /// `Store` calls, so the data is still consistent).
    pub fn lock_world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts connections until shutdown; each connection then finishes its open requests
/// (at most 5 s). Connections allow HTTP upgrades (exec and port-forward streams).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let conn_info = match (stream.peer_addr(), stream.local_addr()) {
        (Ok(peer), Ok(local)) => Some(kubelet_proxy::Conn { peer, local }),
        _ => None,
    };
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let shared = shared.clone();
        if let Some(c) = conn_info {
            req.extensions_mut().insert(c);
        }
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Runs garbage collection, namespace cleanup and (when enabled) the workload controllers
/// after writes until shutdown; each round repeats until nothing changes (bounded, so a
/// controller that keeps writing cannot hold the lock forever).
pub async fn run_gc(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = shared.gc.notified() => {
                let mut world = shared.lock_world();
                for _ in 0..20 {
                    let collected = world.collect_garbage();
                    let controlled = shared.controllers && world.run_controllers();
                    if !collected && !controlled {
                        break;
                    }
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().map(str::to_string);
    let route = route::parse(&path);
    if let Route::Admin(rest) = &route {
        let method = req.method().clone();
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error(&ApiError::bad_request(format!("failed to read body: {e}"))),
        };
        return admin::handle(&shared, &method, rest, &body);
    }
    if matches!(route, Route::Health) {
        return json(200, &serde_json::json!("ok"));
    }
    if shared.faults.is_paused() {
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            _ = shared.faults.wait_unpaused() => {}
            _ = shutdown.changed() => return error(&ApiError::new(503, "ServiceUnavailable", "the server is shutting down")),
        }
    }
    let result = match route {
        Route::Resource(p) => return serve_resource(&shared, req, p, raw_query).await,
        Route::Version => Ok(discovery::version()),
        Route::CoreVersions => Ok(discovery::core_versions(&shared.addr.to_string())),
        Route::Groups => Ok(discovery::groups(&shared.lock_world().registry)),
        Route::Group(g) => discovery::group(&shared.lock_world().registry, &g),
        Route::ResourceList { group, version } => {
            discovery::resource_list(&shared.lock_world().registry, &group, &version)
        }
        Route::OpenApiRoot => Ok(openapi::root(&shared.lock_world().registry)),
        Route::OpenApiDoc { group, version } => {
            openapi::document(&shared.lock_world().registry, &group, &version)
        }
        Route::Admin(_) | Route::Health | Route::Unknown => Err(ApiError::no_route(&path)),
    };
    match result {
        Ok(v) => json(200, &v),
        Err(e) => error(&e),
    }
}

async fn serve_resource(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: route::ResourcePath,
    raw_query: Option<String>,
) -> Resp {
    let user_agent = header_str(&req, header::USER_AGENT);
    let accept = header_str(&req, header::ACCEPT);
    let content_type = header_str(&req, header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let method = req.method().clone();
    let query = match Query::parse(raw_query.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(&e),
    };
    let verb = handlers::verb(&method, &path, &query);
    let user = UserInfo::from_headers(req.headers());
    let resource = match &path.subresource {
        Some(s) => format!("{}/{s}", path.plural),
        None => path.plural.clone(),
    };
    let mut record = RequestRecord {
        verb: verb.to_string(),
        group: path.group.clone(),
        resource,
        namespace: path.namespace.clone(),
        name: path.name.clone(),
        user_agent,
        user: user
            .as_ref()
            .map(|u| u.username.clone())
            .unwrap_or_default(),
        code: 0,
    };
    let wants_protobuf = verb != "watch" && protobuf::preferred(&accept);
    let resp = match user {
        Ok(user) => {
            let headers = Headers {
                accept,
                content_type,
                user_agent: record.user_agent.clone(),
                user,
            };
            match resource_response(shared, req, path, query, headers, verb).await {
                Ok(r) => r,
                Err(e) => error(&e),
            }
        }
        Err(e) => error(&e),
    };
    let resp = if wants_protobuf {
        as_protobuf(resp).await
    } else {
        resp
    };
    record.code = resp.status().as_u16();
    shared.log.record(record);
    resp
}

/// A JSON answer re-encoded as protobuf (objects, lists and `Status` of built-in kinds); an
/// answer protobuf cannot carry (custom resources, streams) stays JSON, which every protobuf
/// client also accepts.
async fn as_protobuf(resp: Resp) -> Resp {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(&ApiError::internal("failed to read the answer"));
    };
    let encoded = serde_json::from_slice(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| protobuf::encode(&v));
    match encoded {
        Ok(pb) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(protobuf::MEDIA_TYPE),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Resp::from_parts(parts, full(pb))
        }
        Err(why) => {
            tracing::debug!(%why, "answering JSON instead of protobuf");
            Resp::from_parts(parts, full(bytes))
        }
    }
}

/// `pods/NAME/{log,exec,attach,portforward}` (handed to the kubelet).
fn kubelet_subresource(res: &crate::resource::ResourceInfo, path: &route::ResourcePath) -> bool {
    res.group.is_empty()
        && res.plural == "pods"
        && path.name.is_some()
        && path.namespace.is_some()
        && path
            .subresource
            .as_deref()
            .is_some_and(|s| crate::builtin::POD_KUBELET_SUBRESOURCES.contains(&s))
}

struct Headers {
    accept: String,
    content_type: String,
    user_agent: String,
    user: UserInfo,
}

async fn resource_response(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: route::ResourcePath,
    query: Query,
    headers: Headers,
    verb: &str,
) -> Result<Resp, ApiError> {
    let res = shared
        .lock_world()
        .registry
        .lookup(&path.group, &path.version, &path.plural)
        .ok_or_else(|| ApiError::no_route(&format!("{} {}", req.method(), req.uri().path())))?;
    let method = req.method().clone();
    let fault = shared.faults.check(
        verb,
        &path.plural,
        path.subresource.as_deref(),
        path.namespace.as_deref(),
    );
    match fault {
        Some(FaultAction::Error {
            code,
            retry_after_seconds,
            message,
        }) => {
            let (reason, default) = match code {
                429 => (
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                ),
                503 => (
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                ),
                504 => (
                    "Timeout",
                    "the server was unable to return a response in the time allotted",
                ),
                _ => (
                    "InternalError",
                    "an error on the server (injected fault) has prevented the request from succeeding",
                ),
            };
            let mut e = ApiError::new(code, reason, message.unwrap_or_else(|| default.into()));
            e.retry_after = retry_after_seconds;
            return Err(e);
        }
        Some(FaultAction::Delay { millis }) => tokio::time::sleep(hold(millis)).await,
        Some(FaultAction::Timeout { millis }) => {
            tokio::time::sleep(hold(millis)).await;
            return Err(ApiError::new(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ));
        }
        None => {}
    }
    if kubelet_subresource(&res, &path) {
        return kubelet_proxy::serve(shared, req, &path).await;
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("failed to read request body: {e}")))?
        .to_bytes();
    let api_req = ApiRequest {
        method,
        path,
        res,
        query,
        accept: headers.accept,
        content_type: headers.content_type,
        user_agent: headers.user_agent,
        user: headers.user,
        body,
    };
    handlers::serve(shared, api_req, verb).await
}
