//! The load balancer's health probe (`GET /gw/<SGC UID>`, port 8082): 200 only when that
//! gateway is fully programmed on this node and the daemon is not draining; 503 otherwise;
//! 400 for any other path shape, as the original.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use hyper::StatusCode;

use crate::http::Answer;

#[derive(Debug, Default)]
struct Inner {
    programmed: RwLock<BTreeSet<String>>,
    draining: AtomicBool,
}

/// What the probe answers from; shared by the programmer (writer) and the server (reader).
#[derive(Debug, Clone, Default)]
pub struct ProbeState(Arc<Inner>);

impl ProbeState {
    /// Replaces the set of SGC UIDs that are fully programmed.
    pub fn set_programmed(&self, uids: BTreeSet<String>) {
        *self.0.programmed.write().unwrap_or_else(|p| p.into_inner()) = uids;
    }

    /// The SGC UIDs currently answered with 200 (when not draining).
    pub fn programmed(&self) -> BTreeSet<String> {
        self.0
            .programmed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// From now on every probe answers 503, so the load balancer sends no new flows here.
    pub fn start_draining(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
    }

    /// True once draining started.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    /// The answer to a probe of `path`.
    pub fn answer(&self, path: &str) -> Answer {
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
        let up = !self.draining()
            && self
                .0
                .programmed
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(uid);
        if up {
            (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "gateway not ready on this node\n".into(),
            )
        }
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
        probe.start_draining();
        assert_eq!(probe.answer("/gw/u1").0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
