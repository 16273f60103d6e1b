//! Which StaticGatewayConfiguration a pod uses: the one rule every component applies (the CNI
//! manager at ADD and for running pods, the gateway daemons when they decide whether a
//! PodEndpoint may speak for its pod, the operator for the `SelectorConflict` condition), so
//! they can never disagree.
//!
//! 1. The annotation `kubernetes.azure.com/static-gateway-configuration` wins over any selector.
//! 2. Otherwise the SGCs of the pod's own namespace whose `spec.podSelector` matches the pod's
//!    labels: exactly one gives that SGC; two or more give none of them (a conflict, until
//!    someone resolves it); none gives no gateway.
//!
//! An empty selector `{}` matches every pod of its namespace (Kubernetes semantics). A selector
//! that does not parse (unknown operator, values where none belong or missing where needed)
//! matches no pod: it is reported ([`check`]), never treated as match-all.
//!
//! Pure: no client, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::StaticGatewayConfiguration;

/// The gateway a pod uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The pod's annotation names this SGC (selectors are not consulted).
    Annotation(String),
    /// Not annotated; this SGC's `podSelector` is the only one matching the pod.
    Selector(String),
    /// Not annotated; the `podSelector`s of these SGCs (sorted, two or more) all match the
    /// pod, so it uses none of them.
    Conflict(Vec<String>),
    /// Neither annotated nor selected.
    None,
}

impl Choice {
    /// The SGC the pod uses, if exactly one.
    pub fn gateway(&self) -> Option<&str> {
        match self {
            Choice::Annotation(n) | Choice::Selector(n) => Some(n),
            Choice::Conflict(_) | Choice::None => None,
        }
    }

    /// What a person needs to read about a conflict (`None` for any other choice).
    pub fn conflict_reason(&self, namespace: &str) -> Option<String> {
        let Choice::Conflict(names) = self else {
            return None;
        };
        Some(format!(
            "the podSelector of {} StaticGatewayConfigurations in namespace {namespace} ({}) match the pod and no {} annotation decides: it uses none of them until exactly one selects it",
            names.len(),
            names.join(", "),
            crate::constants::POD_ANNOTATION
        ))
    }
}

/// Why a `podSelector` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// An operator other than In, NotIn, Exists, DoesNotExist.
    #[error(
        "matchExpressions[{index}].operator {operator:?} is not one of In, NotIn, Exists, DoesNotExist"
    )]
    UnknownOperator {
        /// Position in `matchExpressions`.
        index: usize,
        /// The operator as written.
        operator: String,
    },
    /// In or NotIn without values.
    #[error("matchExpressions[{index}] ({operator}) needs at least one value")]
    MissingValues {
        /// Position in `matchExpressions`.
        index: usize,
        /// The operator.
        operator: String,
    },
    /// Exists or DoesNotExist with values.
    #[error("matchExpressions[{index}] ({operator}) must not have values")]
    UnexpectedValues {
        /// Position in `matchExpressions`.
        index: usize,
        /// The operator.
        operator: String,
    },
    /// An empty key.
    #[error("matchExpressions[{index}].key is empty")]
    EmptyKey {
        /// Position in `matchExpressions`.
        index: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn parse(index: usize, r: &LabelSelectorRequirement) -> Result<Self, SelectorError> {
        if r.key.is_empty() {
            return Err(SelectorError::EmptyKey { index });
        }
        let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
        let op = r.operator.as_str();
        let key = r.key.clone();
        match op {
            "In" | "NotIn" if values.is_empty() => Err(SelectorError::MissingValues {
                index,
                operator: op.to_owned(),
            }),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                Err(SelectorError::UnexpectedValues {
                    index,
                    operator: op.to_owned(),
                })
            }
            "In" => Ok(Requirement::In(key, values)),
            "NotIn" => Ok(Requirement::NotIn(key, values)),
            "Exists" => Ok(Requirement::Exists(key)),
            "DoesNotExist" => Ok(Requirement::DoesNotExist(key)),
            _ => Err(SelectorError::UnknownOperator {
                index,
                operator: op.to_owned(),
            }),
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed `podSelector`: `matchLabels` and `matchExpressions` all hold (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSelector {
    labels: BTreeMap<String, String>,
    requirements: Vec<Requirement>,
}

impl PodSelector {
    /// Parses a selector as the API server would accept it.
    pub fn parse(selector: &LabelSelector) -> Result<Self, SelectorError> {
        let requirements = selector
            .match_expressions
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| Requirement::parse(i, r))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            labels: selector.match_labels.clone().unwrap_or_default(),
            requirements,
        })
    }

    /// Whether a pod with these labels matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True for `{}`: every pod of the namespace.
    pub fn selects_all(&self) -> bool {
        self.labels.is_empty() && self.requirements.is_empty()
    }
}

/// The `podSelector` of an SGC, parsed: `None` without one, `Some(Err)` when it does not parse.
pub fn check(sgc: &StaticGatewayConfiguration) -> Option<Result<PodSelector, SelectorError>> {
    sgc.spec.pod_selector.as_ref().map(PodSelector::parse)
}

/// The usable `podSelector`s of every namespace, by SGC name (invalid ones left out: they
/// match nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    by_namespace: BTreeMap<String, BTreeMap<String, PodSelector>>,
}

impl Selectors {
    /// The selectors of `sgcs` (any namespaces; SGCs without a selector are skipped).
    pub fn of<'a>(sgcs: impl IntoIterator<Item = &'a StaticGatewayConfiguration>) -> Self {
        let mut by_namespace: BTreeMap<String, BTreeMap<String, PodSelector>> = BTreeMap::new();
        for sgc in sgcs {
            let (Some(ns), Some(name)) = (&sgc.metadata.namespace, &sgc.metadata.name) else {
                continue;
            };
            if let Some(Ok(selector)) = check(sgc) {
                by_namespace
                    .entry(ns.clone())
                    .or_default()
                    .insert(name.clone(), selector);
            }
        }
        Self { by_namespace }
    }

    /// Namespaces with at least one usable selector: only their unannotated pods can have a
    /// gateway.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.by_namespace.keys().map(String::as_str)
    }

    /// The usable selectors of `namespace`, by SGC name (compare them to see whether the
    /// namespace's pods may resolve differently).
    pub fn of_namespace(&self, namespace: &str) -> Option<&BTreeMap<String, PodSelector>> {
        self.by_namespace.get(namespace)
    }

    /// Whether `namespace` has a usable selector.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.by_namespace.contains_key(namespace)
    }

    /// The gateway of a pod of `namespace` with `labels` and the annotation value
    /// `annotation` (an empty value counts as none, as it always has).
    pub fn choose(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        annotation: Option<&str>,
    ) -> Choice {
        if let Some(name) = annotation.filter(|a| !a.is_empty()) {
            return Choice::Annotation(name.to_owned());
        }
        let mut matching: Vec<String> = self
            .by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .filter(|(_, s)| s.matches(labels))
            .map(|(name, _)| name.clone())
            .collect();
        match matching.len() {
            0 => Choice::None,
            1 => Choice::Selector(matching.remove(0)),
            _ => Choice::Conflict(matching),
        }
    }
}

#[cfg(test)]
#[path = "selection_tests.rs"]
mod tests;
