//! An in-memory Kubernetes API server for tests and the simulator. It speaks the real HTTP API
//! (discovery, OpenAPI v3, CRUD in JSON, YAML and — for built-in kinds — protobuf, patch incl.
//! server-side apply, watch, status and scale subresources, finalizers, garbage collection, CRD
//! admission, ValidatingAdmissionPolicies), runs kube-controller-manager's deployment and
//! replicaset controllers, and hands pods' log/exec/attach/portforward to a configured kubelet,
//! so kube-rs clients, kube-runtime and kubectl run unmodified against it. Not for production:
//! no authentication (requests act as the administrator or whom they impersonate), no
//! authorization, no persistence.
//!
//! Start it in-process with [`ApiServer::start`] or run the `egress-apiserver` binary.

mod admin;
mod admission;
mod builtin;
mod crd;
mod delete;
mod discovery;
mod error;
mod events;
mod faults;
mod gc;
mod handlers;
mod http;
mod identity;
mod kubelet_proxy;
mod managed;
mod objects;
mod openapi;
mod policy;
mod printers;
mod protobuf;
mod query;
mod registry;
mod request_log;
mod resource;
mod route;
mod schema;
mod selector;
mod server;
mod store;
mod table;
mod workloads;
mod world;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use error::{ApiError, Cause, StartError};
pub use faults::{FaultAction, FaultRule, Faults};
pub use identity::UserInfo;
pub use kubelet_proxy::{KubeletAddr, KubeletConfig};
pub use request_log::{Counter, RequestLog, RequestRecord};

use server::Shared;
use world::{World, WriteOpts};

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// CRD files or directories (`*.yaml`, `*.yml`, `*.json`, multi-document) to serve at start.
    pub crd_paths: Vec<PathBuf>,
    /// How many change events are kept for watch resumption (older starts get 410 Gone).
    pub history_limit: usize,
    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Run kube-controller-manager's deployment and replicaset controllers (Deployments get
    /// ReplicaSets and pods, scaling and rollouts, status); default on.
    pub controllers: bool,
    /// The kubelet that serves pods' `log`, `exec`, `attach` and `portforward` (every node's),
    /// and which local user may use them; none by default.
    pub kubelet: KubeletConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            port: 0,
            crd_paths: Vec::new(),
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(1),
            controllers: true,
            kubelet: KubeletConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Adds a CRD file or directory.
    pub fn with_crds(mut self, path: impl AsRef<Path>) -> Self {
        self.crd_paths.push(path.as_ref().to_path_buf());
        self
    }
}

/// Entry point.
#[derive(Debug)]
pub struct ApiServer;

impl ApiServer {
    /// Binds 127.0.0.1:`port`, registers the CRDs and starts serving.
    pub async fn start(config: ServerConfig) -> Result<RunningApiServer, StartError> {
        let mut world = World::new(config.history_limit);
        for dir in &config.crd_paths {
            for (path, crd) in crd::read_crd_files(dir)? {
                register_crd(&mut world, crd).map_err(|e| StartError::RegisterCrd {
                    path,
                    source: Box::new(e),
                })?;
            }
        }
        let addr = format!("127.0.0.1:{}", config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            faults: Arc::new(Faults::default()),
            log: Arc::new(RequestLog::default()),
            gc: Notify::new(),
            shutdown: shutdown_rx,
            addr,
            bookmark_interval: config.bookmark_interval,
            controllers: config.controllers,
            kubelet: config.kubelet.clone(),
        });
        let tasks = vec![
            tokio::spawn(server::serve(listener, shared.clone())),
            tokio::spawn(server::run_gc(shared.clone())),
        ];
        tracing::info!(%addr, "egress-apiserver listening");
        Ok(RunningApiServer {
            shared,
            shutdown_tx,
            tasks,
        })
    }
}

fn register_crd(world: &mut World, crd: Value) -> Result<(), ApiError> {
    let res = world
        .resource("apiextensions.k8s.io", "customresourcedefinitions")
        .ok_or_else(|| ApiError::internal("the CRD resource is not registered"))?;
    world.create(&res, &WriteOpts::for_version("v1"), None, crd)?;
    Ok(())
}

/// A started server; dropping it stops it.
#[derive(Debug)]
pub struct RunningApiServer {
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningApiServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A kubeconfig pointing at this server (no credentials; context `egress-apiserver`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: egress-apiserver\n  cluster:\n    server: {}\nusers:\n- name: egress-apiserver\n  user: {{}}\ncontexts:\n- name: egress-apiserver\n  context:\n    cluster: egress-apiserver\n    user: egress-apiserver\n    namespace: default\ncurrent-context: egress-apiserver\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), StartError> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| StartError::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// A kube client for this server (default namespace `default`).
    pub fn client(&self) -> Result<kube::Client, StartError> {
        let url = self.url();
        let uri = url
            .parse::<::http::Uri>()
            .map_err(|source| StartError::Url { url, source })?;
        kube::Client::try_from(kube::Config::new(uri)).map_err(StartError::Client)
    }

    /// A kube client acting as `user` (impersonation headers; default namespace `default`).
    pub fn client_as(&self, user: &UserInfo) -> Result<kube::Client, StartError> {
        let url = self.url();
        let uri = url
            .parse::<::http::Uri>()
            .map_err(|source| StartError::Url { url, source })?;
        let mut config = kube::Config::new(uri);
        user.impersonate(&mut config);
        kube::Client::try_from(config).map_err(StartError::Client)
    }

    /// Fault injection switches.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The request log.
    pub fn request_log(&self) -> &RequestLog {
        &self.shared.log
    }

    /// Forgets the watch history: watches from any earlier resourceVersion get 410 Gone.
    pub fn compact(&self) {
        self.shared.lock_world().store.compact();
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_world().store.current_rv()
    }

    /// Stops accepting, ends open watches and waits for the server tasks.
    pub async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for RunningApiServer {
    fn drop(&mut self) {
        self.shutdown_tx.send_replace(true);
    }
}
