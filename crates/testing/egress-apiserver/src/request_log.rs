//! The request log: every API request with its verb, resource, namespace, name, user agent and
//! answer code (the most recent ones kept), plus counters per (verb, resource, user agent) that
//! tests and benchmarks use to count API calls and writes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

const KEEP: usize = 10_000;

/// One served API request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`).
    pub verb: String,
    /// API group, empty for core.
    pub group: String,
    /// `pods`, or `pods/status` for the subresource.
    pub resource: String,
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// Object name, for item requests.
    pub name: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// The user the request acted as (`system:admin` unless impersonating).
    pub user: String,
    /// The answer's HTTP code (for watches: the code the stream started with).
    pub code: u16,
}

impl RequestRecord {
    /// Whether the request was a write.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// A counter row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    /// Verb.
    pub verb: String,
    /// Resource (with `/subresource`).
    pub resource: String,
    /// User agent.
    pub user_agent: String,
    /// Requests counted.
    pub count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    recent: VecDeque<RequestRecord>,
    counts: BTreeMap<(String, String, String), u64>,
}

/// The log of one server.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

impl RequestLog {
    /// Records a request.
    pub fn record(&self, rec: RequestRecord) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner
            .counts
            .entry((
                rec.verb.clone(),
                rec.resource.clone(),
                rec.user_agent.clone(),
            ))
            .or_default() += 1;
        inner.recent.push_back(rec);
        while inner.recent.len() > KEEP {
            inner.recent.pop_front();
        }
    }

    /// Requests with this verb on this resource (`pods`, `pods/status`), any user agent.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .counts
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Writes (create/update/patch/delete/deletecollection) on any resource by user agents
    /// containing `user_agent` (empty: all).
    pub fn writes(&self, user_agent: &str) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .counts
            .iter()
            .filter(|((v, _, ua), _)| {
                matches!(
                    v.as_str(),
                    "create" | "update" | "patch" | "delete" | "deletecollection"
                ) && ua.contains(user_agent)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// All counters.
    pub fn counters(&self) -> Vec<Counter> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .counts
            .iter()
            .map(|((verb, resource, user_agent), n)| Counter {
                verb: verb.clone(),
                resource: resource.clone(),
                user_agent: user_agent.clone(),
                count: *n,
            })
            .collect()
    }

    /// The most recent requests, oldest first.
    pub fn recent(&self) -> Vec<RequestRecord> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.recent.iter().cloned().collect()
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.recent.clear();
        inner.counts.clear();
    }
}
