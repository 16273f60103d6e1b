//! Fault injection: rules that fail (any code, 429 with Retry-After), delay or time out requests
//! matching a verb/resource/namespace, a switch that pauses the whole API, and a trigger that
//! drops every open watch connection. Shared by the in-process API and the admin endpoint.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer a `Status` with this code (500, 503, 429, ...), without touching the store.
    #[serde(rename_all = "camelCase")]
    Error {
        /// HTTP code.
        code: u16,
        /// `Retry-After` header and `details.retryAfterSeconds` (for 429/503).
        #[serde(default)]
        retry_after_seconds: Option<u64>,
        /// Status message; a default one is used when absent.
        #[serde(default)]
        message: Option<String>,
    },
    /// Wait, then serve the request normally.
    Delay {
        /// How long.
        millis: u64,
    },
    /// Hold the request, then answer 504 `Timeout` without serving it.
    Timeout {
        /// How long to hold it.
        millis: u64,
    },
}

/// A rule: which requests, what happens, how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`); any when absent.
    #[serde(default)]
    pub verb: Option<String>,
    /// Resource (`pods`, or `pods/status` for the subresource only); any when absent.
    #[serde(default)]
    pub resource: Option<String>,
    /// Namespace; any when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// What happens.
    pub action: FaultAction,
    /// Fire this many times, then expire; forever when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule failing `verb` on `resource` with `code`.
    pub fn error(verb: &str, resource: &str, code: u16) -> Self {
        Self {
            verb: Some(verb.to_string()),
            resource: Some(resource.to_string()),
            namespace: None,
            action: FaultAction::Error {
                code,
                retry_after_seconds: None,
                message: None,
            },
            times: None,
        }
    }

    /// Limits the rule to `n` matches.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, verb: &str, resource: &str, sub: Option<&str>, ns: Option<&str>) -> bool {
        let verb_ok = self.verb.as_deref().is_none_or(|v| v == verb);
        let res_ok = self
            .resource
            .as_deref()
            .is_none_or(|r| match r.split_once('/') {
                Some((plural, s)) => plural == resource && sub == Some(s),
                None => r == resource,
            });
        let ns_ok = self.namespace.as_deref().is_none_or(|n| ns == Some(n));
        verb_ok && res_ok && ns_ok
    }
}

/// The fault switches of one server.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<(u64, FaultRule)>>,
    next_id: Mutex<u64>,
    paused: watch::Sender<bool>,
    drop_watches: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            next_id: Mutex::new(1),
            paused: watch::Sender::new(false),
            drop_watches: watch::Sender::new(0),
        }
    }
}

impl Faults {
    /// Adds a rule; returns its id.
    pub fn inject(&self, rule: FaultRule) -> u64 {
        let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        let id = *next;
        *next += 1;
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, rule));
        id
    }

    /// Removes one rule.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = rules.len();
        rules.retain(|(i, _)| *i != id);
        rules.len() != before
    }

    /// Removes every rule and resumes the server.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.resume();
    }

    /// The active rules with their ids.
    pub fn rules(&self) -> Vec<(u64, FaultRule)> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The action for a request, consuming one use of a counted rule.
    pub fn check(
        &self,
        verb: &str,
        resource: &str,
        sub: Option<&str>,
        ns: Option<&str>,
    ) -> Option<FaultAction> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let idx = rules
            .iter()
            .position(|(_, r)| r.matches(verb, resource, sub, ns))?;
        let action = rules[idx].1.action.clone();
        if let Some(n) = rules[idx].1.times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                rules.remove(idx);
            }
        }
        Some(action)
    }

    /// Holds every API request (not the admin endpoint) until [`Faults::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Lets held and new requests through.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Whether the server is paused.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits while paused.
    pub async fn wait_unpaused(&self) {
        let mut rx = self.paused.subscribe();
        // The sender lives as long as `self`, so this only ends when unpaused.
        let _ = rx.wait_for(|p| !*p).await;
    }

    /// Breaks every open watch connection (clients see the stream fail).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// A receiver that changes when watches must be dropped.
    pub fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }
}

/// How long a delay or timeout action holds a request.
pub fn hold(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn counted_rules_expire_and_match_subresources() {
        let f = Faults::default();
        f.inject(FaultRule::error("patch", "pods/status", 500).times(1));
        assert!(f.check("patch", "pods", None, Some("a")).is_none());
        assert!(
            f.check("patch", "pods", Some("status"), Some("a"))
                .is_some()
        );
        assert!(
            f.check("patch", "pods", Some("status"), Some("a"))
                .is_none()
        );
    }

    #[test]
    fn rules_parse_from_admin_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"verb":"list","resource":"pods","action":{"type":"error","code":429,"retryAfterSeconds":2}}"#,
        )
        .unwrap();
        assert_eq!(
            r.action,
            FaultAction::Error {
                code: 429,
                retry_after_seconds: Some(2),
                message: None
            }
        );
    }
}
