//! The load balancer's health probe (`GET /gw/<SGC UID>`, port 8082): 200 only when that
//! gateway is fully programmed on this node and the node is not being taken out of service;
//! 503 otherwise; 400 for any other path shape, as the original.
//!
//! Two things take a node out of service: the node itself being drained (cordoned, deleted,
//! shutting down, or annotated; see `lifecycle`), and a SIGTERM the daemon decided to answer
//! with a drain. A SIGTERM of a mere restart does neither: the kernel keeps forwarding and
//! the next instance adopts it, so the load balancer must not move the flows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::http::Answer;

#[derive(Debug, Default)]
struct Inner {
    programmed: RwLock<BTreeSet<String>>,
    /// The WireGuard interface of each programmed SGC UID (what the sessions query reads;
    /// not part of the keeper's snapshot).
    interfaces: RwLock<BTreeMap<String, String>>,
    /// Why the node is being taken out of service (from its Node object), if it is.
    node_drain: RwLock<Option<String>>,
    /// The daemon is draining before it stops (SIGTERM on a node that is going away).
    stopping: AtomicBool,
    /// The programmed set was computed once by this instance.
    started: AtomicBool,
    changed: Notify,
}

/// What the probe answers from; shared by the programmer, the node watch and the
/// supervisor (writers) and the probe server and the state-file writer (readers).
#[derive(Debug, Clone, Default)]
pub struct ProbeState(Arc<Inner>);

/// A copy of the probe state: what the `lb-probe` keeper reads from the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSnapshot {
    /// SGC UIDs fully programmed on this node.
    pub programmed: BTreeSet<String>,
    /// Why every probe answers 503, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<String>,
}

impl ProbeSnapshot {
    /// The answer to a probe of `path`.
    pub fn answer(&self, path: &str) -> Answer {
        answer(path, |uid| {
            self.draining.is_none() && self.programmed.contains(uid)
        })
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl ProbeState {
    /// Replaces the set of SGC UIDs that are fully programmed.
    pub fn set_programmed(&self, uids: BTreeSet<String>) {
        let mut w = self.0.programmed.write().unwrap_or_else(|p| p.into_inner());
        if *w != uids {
            *w = uids;
            self.0.changed.notify_one();
        }
    }

    /// Replaces the WireGuard interface of each programmed SGC UID.
    pub fn set_interfaces(&self, interfaces: BTreeMap<String, String>) {
        *self.0.interfaces.write().unwrap_or_else(|p| p.into_inner()) = interfaces;
    }

    /// The WireGuard interface of a programmed SGC UID.
    pub fn interface_of(&self, uid: &str) -> Option<String> {
        self.0
            .interfaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .cloned()
    }

    /// The SGC UIDs currently answered with 200 (when not draining).
    pub fn programmed(&self) -> BTreeSet<String> {
        read(&self.0.programmed)
    }

    /// Sets (or clears) the reason the node is being taken out of service.
    pub fn set_node_drain(&self, reason: Option<String>) {
        let mut w = self.0.node_drain.write().unwrap_or_else(|p| p.into_inner());
        if *w != reason {
            *w = reason;
            self.0.changed.notify_one();
        }
    }

    /// Why the node is being taken out of service, if it is.
    pub fn node_drain(&self) -> Option<String> {
        read(&self.0.node_drain)
    }

    /// From now on every probe answers 503, so the load balancer sends no new flows here.
    pub fn start_draining(&self) {
        self.0.stopping.store(true, Ordering::SeqCst);
        self.0.changed.notify_one();
    }

    /// True while probes answer 503 for every gateway.
    pub fn draining(&self) -> bool {
        self.0.stopping.load(Ordering::SeqCst) || self.node_drain().is_some()
    }

    /// Marks the programmed set as this instance's own (after its first full cycle).
    pub fn set_started(&self) {
        if !self.0.started.swap(true, Ordering::SeqCst) {
            self.0.changed.notify_one();
        }
    }

    /// Whether this instance computed the programmed set yet.
    pub fn started(&self) -> bool {
        self.0.started.load(Ordering::SeqCst)
    }

    /// Waits until something changed since the last wake-up (changes coalesce).
    pub async fn changed(&self) {
        self.0.changed.notified().await;
    }

    /// The state as the keeper sees it.
    pub fn snapshot(&self) -> ProbeSnapshot {
        let draining = if self.0.stopping.load(Ordering::SeqCst) {
            Some("the gateway daemon is draining before it stops".to_owned())
        } else {
            self.node_drain()
        };
        ProbeSnapshot {
            programmed: self.programmed(),
            draining,
        }
    }

    /// The answer to a probe of `path`.
    pub fn answer(&self, path: &str) -> Answer {
        self.snapshot().answer(path)
    }
}

/// 400 for a path that is not `/gw/<uid>`, else 200 when `up(uid)`, else 503.
pub fn answer(path: &str, up: impl Fn(&str) -> bool) -> Answer {
    let parts: Vec<&str> = path.split('/').collect();
    let uid = match parts.as_slice() {
        ["", "gw", uid] if !uid.is_empty() => *uid,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                "expected /gw/<gateway uid>\n".into(),
            );
        }
    };
    if up(uid) {
        (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "gateway not ready on this node\n".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn answers_by_programmed_set_and_drain() {
        let probe = ProbeState::default();
        assert_eq!(probe.answer("/gw/u1").0, StatusCode::SERVICE_UNAVAILABLE);
        probe.set_programmed(["u1".to_owned()].into());
        assert_eq!(probe.answer("/gw/u1").0, StatusCode::OK);
        assert_eq!(probe.answer("/gw/u2").0, StatusCode::SERVICE_UNAVAILABLE);
        for bad in ["/gw/", "/gw", "/gw/u1/x", "/other/u1", "/"] {
            assert_eq!(probe.answer(bad).0, StatusCode::BAD_REQUEST, "{bad}");
        }
        probe.set_node_drain(Some("cordoned".into()));
        assert_eq!(probe.answer("/gw/u1").0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(probe.snapshot().draining.as_deref(), Some("cordoned"));
        probe.set_node_drain(None);
        assert_eq!(probe.answer("/gw/u1").0, StatusCode::OK);
        probe.start_draining();
        assert_eq!(probe.answer("/gw/u1").0, StatusCode::SERVICE_UNAVAILABLE);
        assert!(probe.draining());
    }

    #[tokio::test]
    async fn changes_wake_the_state_writer_once_each() {
        let probe = ProbeState::default();
        probe.set_programmed(["u1".to_owned()].into());
        // A change made before anyone waits is not lost.
        tokio::time::timeout(std::time::Duration::from_secs(1), probe.changed())
            .await
            .unwrap();
        // The same value again is no change.
        probe.set_programmed(["u1".to_owned()].into());
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), probe.changed())
                .await
                .is_err()
        );
    }
}
