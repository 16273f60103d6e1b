//! Pure: what the probe server last answered the load balancer's own prober, per gateway UID
//! (the contract is `egress_api::lb_told`). Only the load balancer's answers are recorded,
//! so the entries are bounded by the probe paths it is configured with; a cap guards against
//! a prober that asks for arbitrary paths.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Most UIDs remembered (an Azure load balancer has at most a few hundred rules).
pub const MAX_UIDS: usize = 4096;

/// The memory.
#[derive(Debug, Default)]
pub struct LbMemory {
    /// UID → what the prober was told of it.
    by_uid: BTreeMap<String, Told>,
}

/// What the prober was told of one UID.
#[derive(Debug, Clone, Copy)]
struct Told {
    /// The status last answered.
    status: u16,
    /// Since when that status has been answered.
    since: Instant,
    /// When the prober last asked.
    asked: Instant,
}

impl LbMemory {
    /// Records that the load balancer's prober was answered `status` for `uid` at `now`;
    /// true when that changed what it was told.
    pub fn record(&mut self, uid: &str, status: u16, now: Instant) -> bool {
        if let Some(told) = self.by_uid.get_mut(uid) {
            told.asked = now;
            if told.status == status {
                return false;
            }
            told.status = status;
            told.since = now;
            return true;
        }
        if self.by_uid.len() >= MAX_UIDS {
            // Forget the path the prober has not asked for longest: the load balancer probes
            // each of its rules steadily, so that is a rule gone or a path it never had.
            let stalest = self
                .by_uid
                .iter()
                .min_by_key(|(_, told)| told.asked)
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                self.by_uid.remove(&k);
            }
        }
        let told = Told {
            status,
            since: now,
            asked: now,
        };
        self.by_uid.insert(uid.to_owned(), told);
        true
    }

    /// What the load balancer's prober was told last for `uid`, and for how long.
    pub fn told(&self, uid: &str, now: Instant) -> Option<(u16, Duration)> {
        self.by_uid
            .get(uid)
            .map(|told| (told.status, now.saturating_duration_since(told.since)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn records_changes_keeps_the_first_time_and_is_bounded() {
        let t0 = Instant::now();
        let mut m = LbMemory::default();
        assert_eq!(m.told("u1", t0), None);
        assert!(m.record("u1", 200, t0));
        assert!(
            !m.record("u1", 200, t0 + Duration::from_secs(1)),
            "same status"
        );
        assert_eq!(
            m.told("u1", t0 + Duration::from_secs(2)),
            Some((200, Duration::from_secs(2))),
            "since the first 200"
        );
        let t1 = t0 + Duration::from_secs(3);
        assert!(m.record("u1", 503, t1));
        assert_eq!(
            m.told("u1", t1 + Duration::from_millis(5)),
            Some((503, Duration::from_millis(5)))
        );
        for i in 0..MAX_UIDS + 10 {
            m.record(
                &format!("x{i}"),
                200,
                t1 + Duration::from_millis(i as u64 + 1),
            );
        }
        assert_eq!(m.by_uid.len(), MAX_UIDS);
        assert_eq!(m.told("u1", t1), None, "the stalest went first");
    }

    #[test]
    fn a_rule_probed_steadily_outlives_a_flood_of_new_paths() {
        let t0 = Instant::now();
        let mut m = LbMemory::default();
        m.record("rule", 200, t0);
        for i in 0..2 * MAX_UIDS {
            let now = t0 + Duration::from_millis(i as u64 + 1);
            m.record(&format!("junk{i}"), 503, now);
            if i % 100 == 0 {
                // The real rule is asked again now and then, its status unchanged.
                assert!(!m.record("rule", 200, now));
            }
        }
        assert_eq!(m.by_uid.len(), MAX_UIDS);
        let end = t0 + Duration::from_secs(60);
        assert_eq!(
            m.told("rule", end),
            Some((200, Duration::from_secs(60))),
            "kept, and told 200 since its first answer"
        );
    }
}
