//! Fault injection: rules that make matching requests fail (429 with Retry-After, 500, dropped
//! connection) or make the long-running operations they start slow or failed.
//!
//! Rules match by method, path glob and operation-name glob; they fire with a probability and/or
//! a limited count. Immediate kinds are checked before a request is handled; LRO kinds only when
//! a request starts a long-running operation.

use crate::error::EmulatorError;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// 429 Too Many Requests with `Retry-After`.
    #[serde(rename = "429", alias = "throttle")]
    Throttle,
    /// 500 Internal Server Error.
    #[serde(rename = "500", alias = "serverError")]
    ServerError,
    /// The connection is closed without an answer.
    #[serde(rename = "drop", alias = "dropConnection")]
    DropConnection,
    /// The long-running operation needs `extraPolls` more polls.
    #[serde(rename = "slowLro", alias = "slow-lro")]
    SlowLro,
    /// The long-running operation ends `Failed`.
    #[serde(rename = "failLro", alias = "fail-lro")]
    FailLro,
}

impl FaultKind {
    /// True for kinds that act on long-running operations rather than on the request itself.
    pub fn is_lro(self) -> bool {
        matches!(self, Self::SlowLro | Self::FailLro)
    }
}

impl FromStr for FaultKind {
    type Err = EmulatorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.trim().to_owned())).map_err(|_| {
            EmulatorError::InvalidFault(format!(
                "unknown fault kind '{s}' (expected 429, 500, drop, slowLro or failLro)"
            ))
        })
    }
}

/// One fault rule. Unset filters match everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Kinds to inject; one is picked at random each time the rule fires.
    pub kinds: Vec<FaultKind>,
    /// HTTP method (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path glob (`*` matches any run of characters), case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Operation-name glob, e.g. `LoadBalancers.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// How many more times the rule may fire (unset: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Probability a matching request is hit (unset: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// `Retry-After` seconds sent with 429 (unset: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Extra polls for `slowLro` (unset: 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_polls: Option<u32>,
    /// Error code of a failed LRO (unset: `InternalOperationError`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl FaultRule {
    /// A rule injecting `kind` on every request.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kinds: vec![kind],
            method: None,
            path: None,
            operation: None,
            count: None,
            probability: None,
            retry_after: None,
            extra_polls: None,
            error_code: None,
        }
    }

    /// Restricts to an HTTP method.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Restricts to paths matching a glob.
    #[must_use]
    pub fn path(mut self, glob: &str) -> Self {
        self.path = Some(glob.to_owned());
        self
    }

    /// Restricts to operations matching a glob (e.g. `LoadBalancers.CreateOrUpdate`).
    #[must_use]
    pub fn operation(mut self, glob: &str) -> Self {
        self.operation = Some(glob.to_owned());
        self
    }

    /// Fires at most `n` times.
    #[must_use]
    pub fn count(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Fires with probability `p` (0..=1).
    #[must_use]
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// `Retry-After` seconds for 429.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Extra polls for a slow LRO.
    #[must_use]
    pub fn extra_polls(mut self, n: u32) -> Self {
        self.extra_polls = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str, operation: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|g| glob_match(g, path))
            && self
                .operation
                .as_deref()
                .is_none_or(|g| glob_match(g, operation))
    }

    /// Checks the rule's values (probability range, non-empty kinds).
    pub fn validate(&self) -> Result<(), EmulatorError> {
        if self.kinds.is_empty() {
            return Err(EmulatorError::InvalidFault(
                "a fault rule needs at least one kind".into(),
            ));
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(EmulatorError::InvalidFault(format!(
                "probability {p} is outside 0..=1"
            )));
        }
        Ok(())
    }
}

/// A fault that fired for one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Injected {
    pub kind: FaultKind,
    pub rule: FaultRule,
}

/// Case-insensitive glob with `*` only.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let glob = glob.to_ascii_lowercase();
    let text = text.to_ascii_lowercase();
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// The installed fault rules.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    next_id: u64,
    rules: Vec<(u64, FaultRule)>,
    injected: u64,
}

impl FaultSet {
    pub fn rules(&self) -> Vec<(u64, FaultRule)> {
        self.rules.clone()
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(i, _)| *i != id);
        self.rules.len() != before
    }

    pub fn add(&mut self, rule: FaultRule) -> u64 {
        self.next_id += 1;
        self.rules.push((self.next_id, rule));
        self.next_id
    }

    /// First matching rule whose kinds include one of the wanted class (immediate or LRO)
    /// and that fires this time.
    pub fn take(&mut self, method: &str, path: &str, op: &str, lro: bool) -> Option<Injected> {
        for (_, rule) in &mut self.rules {
            let kinds: Vec<FaultKind> = rule
                .kinds
                .iter()
                .copied()
                .filter(|k| k.is_lro() == lro)
                .collect();
            if kinds.is_empty() || rule.count == Some(0) || !rule.matches(method, path, op) {
                continue;
            }
            if fastrand::f64() >= rule.probability.unwrap_or(1.0) {
                continue;
            }
            if let Some(c) = rule.count.as_mut() {
                *c -= 1;
            }
            self.injected += 1;
            let kind = kinds[fastrand::usize(..kinds.len())];
            return Some(Injected {
                kind,
                rule: rule.clone(),
            });
        }
        None
    }
}

/// Handle to the emulator's fault rules (from [`crate::Emulator::faults`]).
#[derive(Debug, Clone)]
pub struct Faults {
    pub(crate) state: Arc<Mutex<crate::state::State>>,
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultSet) -> R) -> R {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut st.faults)
    }

    /// Installs a rule and returns its ID.
    pub fn add(&self, rule: FaultRule) -> Result<u64, EmulatorError> {
        rule.validate()?;
        Ok(self.with(|f| f.add(rule)))
    }

    /// Removes one rule; false when there was none with that ID.
    pub fn remove(&self, id: u64) -> bool {
        self.with(|f| f.remove(id))
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.with(|f| f.rules.clear());
    }

    /// Installed rules with their IDs (counts show what is left).
    pub fn list(&self) -> Vec<(u64, FaultRule)> {
        self.with(|f| f.rules())
    }

    /// How many faults have been injected so far.
    pub fn injected(&self) -> u64 {
        self.with(|f| f.injected)
    }
}

/// Rules from the CLI shorthand `--fault-rate P --fault-kinds 429,500`.
pub fn rule_from_flags(
    rate: f64,
    kinds: &str,
    operation: Option<&str>,
) -> Result<FaultRule, EmulatorError> {
    let kinds = kinds
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(FaultKind::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    let rule = FaultRule {
        kinds,
        operation: operation.map(str::to_owned),
        probability: Some(rate),
        ..FaultRule::new(FaultKind::Throttle)
    };
    rule.validate()?;
    Ok(rule)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn glob_matches_case_insensitively() {
        assert!(glob_match(
            "LoadBalancers.*",
            "loadbalancers.CreateOrUpdate"
        ));
        assert!(glob_match(
            "*/publicIPPrefixes/*",
            "/s/x/publicipprefixes/p"
        ));
        assert!(!glob_match("LoadBalancers.Get", "LoadBalancers.Delete"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn counted_rule_stops_firing() {
        let mut set = FaultSet::default();
        set.add(FaultRule::new(FaultKind::ServerError).count(1));
        assert!(set.take("GET", "/x", "Op", false).is_some());
        assert!(set.take("GET", "/x", "Op", false).is_none());
    }

    #[test]
    fn lro_kinds_only_fire_at_lro_start() {
        let mut set = FaultSet::default();
        set.add(FaultRule::new(FaultKind::FailLro));
        assert!(set.take("PUT", "/x", "Op", false).is_none());
        assert_eq!(
            set.take("PUT", "/x", "Op", true).map(|i| i.kind),
            Some(FaultKind::FailLro)
        );
    }

    #[test]
    fn flags_parse_kinds_and_reject_bad_ones() {
        let r = rule_from_flags(0.3, "429,500", None).unwrap();
        assert_eq!(r.kinds, vec![FaultKind::Throttle, FaultKind::ServerError]);
        assert!(rule_from_flags(0.3, "429,teapot", None).is_err());
        assert!(rule_from_flags(1.5, "429", None).is_err());
    }
}
