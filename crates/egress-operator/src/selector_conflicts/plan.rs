//! Pure: the condition `SelectorConflict` of every StaticGatewayConfiguration with a
//! `podSelector`, from the pods' labels and annotations by the one rule of
//! `egress_api::selection` (the CNI managers and gateway daemons resolve pods with it too):
//! True with reason [`CONFLICTING_SELECTORS`] while pods it selects are selected by another
//! SGC's selector as well (naming the others and a sample of the pods), True with reason
//! [`INVALID_POD_SELECTOR`] when the selector does not parse, False otherwise. An SGC without a
//! selector has no such condition (one left from an earlier selector is removed). Only changes
//! are planned.

use std::collections::{BTreeMap, BTreeSet};

use egress_api::StaticGatewayConfiguration;
use egress_api::conditions::{SELECTOR_CONFLICT, condition, set_condition};
use egress_api::constants::POD_ANNOTATION;
use egress_api::selection::{self, Choice, Selectors};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::{Resource, ResourceExt};

use crate::in_use::plan::describe;

/// Reason while pods are selected by this and another SGC.
pub const CONFLICTING_SELECTORS: &str = "ConflictingSelectors";
/// Reason when the selector does not parse.
pub const INVALID_POD_SELECTOR: &str = "InvalidPodSelector";
/// Reason when neither holds.
pub const NO_CONFLICT: &str = "NoConflict";

/// One SGC's condition change.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionAction {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The condition to apply; `None`: remove it (the SGC has no selector any more).
    pub condition: Option<Condition>,
}

/// Per `(namespace, SGC)`: the pods in conflict, by the set of other SGCs selecting them.
type Conflicts = BTreeMap<(String, String), BTreeMap<BTreeSet<String>, Vec<String>>>;

/// The pods in conflict, from their metadata (only namespaces with two or more selectors can
/// have any, so the others' pods are not looked at).
pub fn conflicts(selectors: &Selectors, pods: &[&ObjectMeta]) -> Conflicts {
    let mut out: Conflicts = BTreeMap::new();
    for pod in pods {
        let ns = pod.namespace.as_deref().unwrap_or_default();
        if selectors.of_namespace(ns).is_none_or(|s| s.len() < 2) {
            continue;
        }
        let labels = pod.labels.clone().unwrap_or_default();
        let annotation = pod
            .annotations
            .as_ref()
            .and_then(|a| a.get(POD_ANNOTATION))
            .map(String::as_str);
        let Choice::Conflict(names) = selectors.choose(ns, &labels, annotation) else {
            continue;
        };
        for name in &names {
            let others: BTreeSet<String> = names.iter().filter(|n| *n != name).cloned().collect();
            out.entry((ns.to_owned(), name.clone()))
                .or_default()
                .entry(others)
                .or_default()
                .push(pod.name.clone().unwrap_or_default());
        }
    }
    for by_others in out.values_mut() {
        for pods in by_others.values_mut() {
            pods.sort();
        }
    }
    out
}

/// The condition (status, reason, message) of one SGC with a selector.
fn wanted(
    sgc: &StaticGatewayConfiguration,
    conflicts: Option<&BTreeMap<BTreeSet<String>, Vec<String>>>,
) -> Option<(bool, &'static str, String)> {
    match selection::check(sgc)? {
        Err(e) => Some((
            true,
            INVALID_POD_SELECTOR,
            format!("spec.podSelector: {e}; it selects no pod"),
        )),
        Ok(_) => Some(match conflicts {
            Some(by_others) => {
                let parts: Vec<String> = by_others
                    .iter()
                    .map(|(others, pods)| {
                        let others: Vec<&str> = others.iter().map(String::as_str).collect();
                        format!(
                            "{} also selected by the podSelector of {}",
                            describe(pods),
                            others.join(", ")
                        )
                    })
                    .collect();
                (
                    true,
                    CONFLICTING_SELECTORS,
                    format!(
                        "{}: such pods use none of these gateways until exactly one podSelector selects them or their {POD_ANNOTATION} annotation names one",
                        parts.join("; ")
                    ),
                )
            }
            None => (
                false,
                NO_CONFLICT,
                "no pod this podSelector selects is selected by another StaticGatewayConfiguration's podSelector".to_owned(),
            ),
        }),
    }
}

fn stored(sgc: &StaticGatewayConfiguration) -> Option<&Condition> {
    sgc.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == SELECTOR_CONFLICT))
}

/// Plans one pass at `now` over every SGC and pod the operator sees.
pub fn plan(
    sgcs: &[&StaticGatewayConfiguration],
    pods: &[&ObjectMeta],
    now: &Time,
) -> Vec<ConditionAction> {
    let selectors = Selectors::of(sgcs.iter().copied());
    let conflicts = conflicts(&selectors, pods);
    let mut out = Vec::new();
    for sgc in sgcs {
        let (namespace, name) = (sgc.namespace().unwrap_or_default(), sgc.name_any());
        let old = stored(sgc);
        let condition = match wanted(sgc, conflicts.get(&(namespace.clone(), name.clone()))) {
            None if old.is_none() => continue,
            None => None,
            Some((status, reason, message)) => {
                let mut merged: Vec<Condition> = old.into_iter().cloned().collect();
                let c = condition(
                    SELECTOR_CONFLICT,
                    status,
                    reason,
                    message,
                    sgc.meta().generation,
                    now.clone(),
                );
                if !set_condition(&mut merged, c) {
                    continue;
                }
                merged.pop()
            }
        };
        out.push(ConditionAction {
            namespace,
            name,
            condition,
        });
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
