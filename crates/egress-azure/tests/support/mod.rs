//! A scripted ARM server on 127.0.0.1 for client tests: per (method, path) a queue of replies
//! (the last one sticks), and a log of every request received. Unscripted routes answer 404
//! `NoRoute` so a wrong path fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use bytes::Bytes;
use egress_azure::{ArmClient, LroPolicy, RetryPolicy};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One scripted response.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(status, json!({"error": {"code": code, "message": message}}))
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

#[derive(Default)]
struct Script {
    routes: HashMap<(String, String), VecDeque<Reply>>,
    log: Vec<Seen>,
}

pub struct ScriptedArm {
    pub base: String,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for ScriptedArm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    script: Arc<Mutex<Script>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut s = script.lock().unwrap();
    s.log.push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: serde_json::from_slice(&body).ok(),
    });
    let key = (
        parts.method.to_string(),
        parts.uri.path().to_ascii_lowercase(),
    );
    let reply = match s.routes.get_mut(&key) {
        Some(q) if q.len() > 1 => q.pop_front(),
        Some(q) => q.front().cloned(),
        None => None,
    }
    .unwrap_or_else(|| Reply::error(404, "NoRoute", &format!("{} {}", key.0, key.1)));
    let mut resp = Response::builder().status(reply.status);
    if reply.body.is_some() {
        resp = resp.header("content-type", "application/json");
    }
    for (k, v) in &reply.headers {
        resp = resp.header(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let body = reply.body.map(|b| b.to_string()).unwrap_or_default();
    Ok(resp.body(Full::new(Bytes::from(body))).unwrap())
}

impl ScriptedArm {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = shared.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| handle(script.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { base, script, task }
    }

    /// Queue replies for `method path` (path compared case-insensitively).
    pub fn on(&self, method: &str, path: &str, replies: Vec<Reply>) {
        self.script.lock().unwrap().routes.insert(
            (method.to_string(), path.to_ascii_lowercase()),
            replies.into(),
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn log(&self) -> Vec<Seen> {
        self.script.lock().unwrap().log.clone()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.log()
            .iter()
            .filter(|s| s.method == method && s.path.eq_ignore_ascii_case(path))
            .count()
    }

    /// A client with a static token and millisecond-scale retry/LRO timings.
    pub fn client(&self) -> ArmClient {
        self.client_with(fast_retry(), fast_lro())
    }

    pub fn client_with(&self, retry: RetryPolicy, lro: LroPolicy) -> ArmClient {
        ArmClient::builder(self.base.parse().unwrap())
            .static_token("test-token")
            .retry(retry)
            .lro(lro)
            .build()
            .unwrap()
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        budget: Duration::from_secs(10),
    }
}

pub fn fast_lro() -> LroPolicy {
    LroPolicy {
        max_duration: Duration::from_secs(5),
        default_poll_interval: Duration::from_millis(5),
        max_poll_interval: Duration::from_millis(50),
    }
}

pub const SUB: &str = "00000000-0000-0000-0000-000000000000";

pub fn rg() -> egress_azure::ResourceGroupId {
    egress_azure::ResourceGroupId::new(SUB, "rg")
}
