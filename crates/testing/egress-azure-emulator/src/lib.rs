//! `egress-azure-emulator`: an Azure Resource Manager + IMDS emulator for the calls
//! kube-egress-gateway makes (load balancers, scale sets and their instances, NICs, public IP
//! prefixes and addresses, subnets, resource groups), usable in-process or as a binary.
//!
//! ```no_run
//! # async fn demo() -> Result<(), egress_azure_emulator::EmulatorError> {
//! use egress_azure_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::default()).await?;
//! let base = emu.arm_url(); // http://127.0.0.1:PORT (https with `tls: true`)
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Long-running operations answer in a configurable, documented form per operation (`forms`);
//! docs/azure-emulator.md lists per operation what is emulated and how it differs from Azure.

mod admin;
mod api_versions;
mod error;
mod faults;
mod forms;
mod http;
mod ids;
mod imds;
mod inventory;
mod ipam;
mod lro;
mod paging;
mod request_log;
mod resources;
mod router;
mod schema;
mod seed;
mod server;
mod state;
mod store;
mod tls;

pub use api_versions::{
    COMPUTE_API_VERSIONS, IMDS_API_VERSIONS, NETWORK_API_VERSIONS, RESOURCES_API_VERSIONS,
    VMSS_NETWORK_API_VERSIONS,
};
pub use error::{ArmError, EmulatorError};
pub use faults::{FaultKind, FaultRule, Faults, rule_from_flags};
pub use forms::{FormError, ResponseForm, parse_setting as parse_response_form};
pub use imds::EMULATOR_TOKEN;
pub use inventory::IpMapping;
pub use request_log::{RequestEntry, RequestLog};
pub use seed::{
    DEFAULT_SEED_YAML, DEFAULT_SUBSCRIPTION, DEFAULT_TENANT, Seed, SeedNetworkInterface,
    SeedPublicIpPools, SeedPublicIpPrefix, SeedResourceGroup, SeedScaleSet, SeedSubnet,
    SeedVirtualMachine, SeedVirtualNetwork,
};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on (default 127.0.0.1).
    pub host: IpAddr,
    /// Port (0 = any free port).
    pub port: u16,
    /// Inventory to start with (`None`: [`Seed::default`]).
    pub seed: Option<Seed>,
    /// Polls before a long-running operation completes (default 2; 0 = complete at once).
    pub lro_polls: u32,
    /// `Retry-After` seconds sent with LRO answers (default 0).
    pub retry_after: u64,
    /// Reject ARM requests without `Authorization: Bearer ...` (default false).
    pub require_auth: bool,
    /// Fault rules installed at start.
    pub faults: Vec<FaultRule>,
    /// Response forms of long-running operations, applied in order after the seed's: operation
    /// name or glob (`VirtualMachineScaleSets.*`) and form.
    pub response_forms: Vec<(String, ResponseForm)>,
    /// Items per list page (default 100); longer lists continue at `nextLink`.
    pub page_size: usize,
    /// Serve https with a throwaway CA (see [`Emulator::ca_pem`]).
    pub tls: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: None,
            lro_polls: 2,
            retry_after: 0,
            require_auth: false,
            faults: Vec::new(),
            response_forms: Vec::new(),
            page_size: 100,
            tls: false,
        }
    }
}

/// A running emulator. Dropping it stops the server too; prefer [`Emulator::shutdown`].
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: server::Shared,
    ca_pem: Option<String>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds the listener, loads the seed and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let bind = SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: bind.to_string(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: bind.to_string(),
                source,
            })?;
        let seed = config.seed.unwrap_or_default();
        if config.page_size == 0 {
            return Err(EmulatorError::InvalidSeed(
                "the page size must be at least 1".into(),
            ));
        }
        let tls = if config.tls {
            Some(tls::generate(addr.ip())?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut forms = forms::FormTable::default();
        for (op, form) in seed.response_forms.iter().chain(&config.response_forms) {
            forms.set(op, *form)?;
        }
        let mut st = state::State {
            settings: state::Settings {
                subscription: seed.subscription_id.clone(),
                tenant_id: seed.tenant_id.clone(),
                location: resources::common::normalise_location(&seed.location),
                lro_polls: config.lro_polls,
                retry_after: config.retry_after,
                require_auth: config.require_auth,
                page_size: config.page_size,
                base_url: format!("{scheme}://{addr}"),
            },
            store: store::Store::default(),
            ipam: ipam::Ipam::new(
                seed.public_ip_pools.all_prefixes(),
                seed.public_ip_pools.all_addresses(),
            ),
            lros: lro::Lros::default(),
            forms,
            faults: faults::FaultSet::default(),
            log: RequestLog::default(),
        };
        seed::apply(&seed, &mut st)?;
        for rule in config.faults {
            rule.validate()?;
            st.faults.add(rule);
        }
        let shared = Arc::new(Mutex::new(st));
        let (stop, rx) = watch::channel(false);
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let task = tokio::spawn(server::serve(listener, shared.clone(), tls, rx));
        Ok(Self {
            addr,
            shared,
            ca_pem,
            stop,
            task: Some(task),
        })
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of Resource Manager (`http://127.0.0.1:PORT`, or `https://` with TLS).
    pub fn arm_url(&self) -> String {
        server::lock(&self.shared).settings.base_url.clone()
    }

    /// Base URL of IMDS for one VM; the client appends `/metadata/instance?api-version=...`
    /// (https when the emulator serves TLS, like every other endpoint).
    pub fn imds_url(&self, computer_name: &str) -> String {
        format!("{}/imds/{computer_name}", self.arm_url())
    }

    /// The CA certificate (PEM) that signed the server certificate, when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Sets the response form of every long-running operation matching `operation` (a name
    /// such as `VirtualMachineScaleSets.Update`, or a glob) whose specification documents it;
    /// returns the operations changed. Same as `PUT /admin/responseForms`.
    pub fn set_response_form(
        &self,
        operation: &str,
        form: ResponseForm,
    ) -> Result<Vec<&'static str>, FormError> {
        server::lock(&self.shared).forms.set(operation, form)
    }

    /// Every long-running operation's form, default and allowed forms (same as
    /// `GET /admin/responseForms`).
    pub fn response_forms(&self) -> serde_json::Value {
        server::lock(&self.shared).forms.describe()
    }

    /// Authority (Entra ID) base URL: tokens are served at `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn authority_url(&self) -> String {
        self.arm_url()
    }

    /// The emulated subscription ID.
    pub fn subscription_id(&self) -> String {
        server::lock(&self.shared).settings.subscription.clone()
    }

    /// Fault-injection rules.
    pub fn faults(&self) -> Faults {
        Faults {
            state: self.shared.clone(),
        }
    }

    /// The whole inventory as JSON (same as `GET /admin/inventory`).
    pub fn inventory(&self) -> serde_json::Value {
        inventory::inventory(&server::lock(&self.shared))
    }

    /// Private → public IP mappings (same as `GET /admin/ipmap`).
    pub fn ip_map(&self) -> Vec<IpMapping> {
        inventory::ip_map(&server::lock(&self.shared).store)
    }

    /// Load-balancing view (same as `GET /admin/lbmap`).
    pub fn lb_map(&self) -> serde_json::Value {
        inventory::lb_map(&server::lock(&self.shared).store)
    }

    /// Snapshot of the request log.
    pub fn request_log(&self) -> RequestLog {
        server::lock(&self.shared).log.clone()
    }

    /// Stops accepting, lets open connections finish (at most 5 s) and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "emulator server task failed");
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
