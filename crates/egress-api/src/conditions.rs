//! Status condition types and the one rule for updating them: `lastTransitionTime` moves only
//! when the status flips, so `kubectl wait` and dashboards see real transitions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Everything needed for egress is provisioned.
pub const READY: &str = "Ready";
/// The gateway WireGuard key pair exists.
pub const KEY_READY: &str = "KeyReady";
/// The load-balancer rule and probe exist.
pub const LOAD_BALANCER_READY: &str = "LoadBalancerReady";
/// The egress prefix (or private IPs) and gateway ipConfigs exist.
pub const PREFIX_READY: &str = "PrefixReady";
/// Pods use the gateway (their PodEndpoints name it); `DeletionBlocked` while that holds a
/// requested deletion.
pub const IN_USE: &str = "InUse";
/// The SGC's `podSelector` matches pods that another SGC's selector matches too (True, those
/// pods use neither), or its selector does not parse (True, reason `InvalidPodSelector`).
/// False when neither holds; absent on SGCs without a `podSelector`.
pub const SELECTOR_CONFLICT: &str = "SelectorConflict";

/// Some `excludeCidrs` entries have no effect because the gateway does not carry their IP
/// family (True, reason `IPv6NotEnabled`, naming them); absent when every entry applies.
pub const EXCLUDE_CIDRS_IGNORED: &str = "ExcludeCidrsIgnored";

/// Inserts or updates the condition of `new.type_`. Returns true when anything changed.
/// `lastTransitionTime` is kept when the status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            let changed = *old != new;
            *old = new;
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// Builds a condition observed at `generation`.
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conds = Vec::new();
        assert!(set_condition(
            &mut conds,
            condition(READY, false, "Provisioning", "waiting", Some(1), at(10))
        ));
        assert!(set_condition(
            &mut conds,
            condition(
                READY,
                false,
                "Provisioning",
                "still waiting",
                Some(1),
                at(20)
            )
        ));
        assert_eq!(conds[0].last_transition_time, at(10));
        assert!(!set_condition(
            &mut conds,
            condition(
                READY,
                false,
                "Provisioning",
                "still waiting",
                Some(1),
                at(30)
            )
        ));
        assert!(set_condition(
            &mut conds,
            condition(READY, true, "Provisioned", "ok", Some(1), at(40))
        ));
        assert_eq!(conds[0].last_transition_time, at(40));
        assert_eq!(conds.len(), 1);
    }
}
