//! The request log: every ARM/IMDS request with its operation name and answer, and counts per
//! operation (admin endpoints are not logged).

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Entries kept; older ones are dropped so long simulator runs stay bounded (counts are kept).
const MAX_ENTRIES: usize = 10_000;

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEntry {
    /// HTTP method.
    pub method: String,
    /// Request path (without query).
    pub path: String,
    /// Operation name, e.g. `LoadBalancers.CreateOrUpdate`.
    pub operation: String,
    /// Status answered (0 when the connection was dropped).
    pub status: u16,
    /// Fault injected, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// Snapshot of the request log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestLog {
    /// Requests per operation name (including faulted ones).
    pub counts: BTreeMap<String, u64>,
    /// Requests per operation and status, keyed `Operation STATUS`.
    pub status_counts: BTreeMap<String, u64>,
    /// The most recent requests, oldest first.
    pub entries: VecDeque<RequestEntry>,
}

impl RequestLog {
    /// Requests logged for one operation.
    pub fn count(&self, operation: &str) -> u64 {
        self.counts.get(operation).copied().unwrap_or(0)
    }

    /// Requests logged for one operation with one status.
    pub fn count_status(&self, operation: &str, status: u16) -> u64 {
        self.status_counts
            .get(&format!("{operation} {status}"))
            .copied()
            .unwrap_or(0)
    }

    /// All requests logged.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub(crate) fn record(&mut self, entry: RequestEntry) {
        *self.counts.entry(entry.operation.clone()).or_default() += 1;
        *self
            .status_counts
            .entry(format!("{} {}", entry.operation, entry.status))
            .or_default() += 1;
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }
}
