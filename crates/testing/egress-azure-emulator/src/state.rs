//! The emulator's whole mutable state behind one mutex: settings, store, IPAM, LROs and their
//! response forms, faults, log.

use crate::faults::FaultSet;
use crate::forms::FormTable;
use crate::ipam::Ipam;
use crate::lro::Lros;
use crate::request_log::RequestLog;
use crate::store::Store;

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub subscription: String,
    pub tenant_id: String,
    pub location: String,
    pub lro_polls: u32,
    pub retry_after: u64,
    pub require_auth: bool,
    /// Items per list page; longer lists continue at `nextLink`.
    pub page_size: usize,
    /// `http(s)://127.0.0.1:PORT`, used in `Azure-AsyncOperation` / `Location` / `nextLink` URLs.
    pub base_url: String,
}

/// Everything that changes while the emulator runs.
#[derive(Debug)]
pub(crate) struct State {
    pub settings: Settings,
    pub store: Store,
    pub ipam: Ipam,
    pub lros: Lros,
    pub forms: FormTable,
    pub faults: FaultSet,
    pub log: RequestLog,
}
