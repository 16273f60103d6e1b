//! `egressctl validate`: checks manifests offline with the rules a cluster applies at admission
//! (the generated CRD schemas, strict field validation as kubectl uses it: errors; the chart's
//! warning policy for StaticGatewayConfigurations, from the same CEL: warnings) plus semantic
//! checks the schema cannot express. Kinds we do not own are ignored, except that pod
//! templates are checked for the egress annotation.

use std::collections::{HashMap, HashSet};
use std::fmt;

use egress_api::constants::{GROUP, POD_ANNOTATION, VERSION};
use egress_api::semantics::{self, Severity};
use egress_schema::{PolicyRules, SchemaValidator};
use serde_json::Value;

use crate::input::Document;
use crate::workloads;

/// One finding about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// File the document came from (`-` for stdin).
    pub source: String,
    /// 1-based document number in the file.
    pub index: usize,
    /// `Kind/name` of the object (`-` when unknown).
    pub object: String,
    /// Field path, empty for the whole document.
    pub field: String,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.source, self.index, self.object)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Everything found in one run.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings in input order.
    pub findings: Vec<Finding>,
    /// Documents read.
    pub documents: usize,
    /// Documents of our API group.
    pub owned: usize,
    /// Documents of other kinds without a pod template (not checked).
    pub ignored: usize,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.findings.len() - self.errors()
    }
}

/// The generated CRD schemas could not be compiled (a bug in this build, not in the input).
#[derive(Debug, thiserror::Error)]
#[error("failed to compile the schema of {kind}: {source}")]
pub struct SchemaLoadError {
    kind: String,
    #[source]
    source: egress_schema::SchemaError,
}

/// Validates documents against the CRDs this build generates.
#[derive(Debug)]
pub struct Validator {
    kinds: HashMap<String, (SchemaValidator, Value)>,
    warnings: PolicyRules,
}

/// Where a pod refers to a StaticGatewayConfiguration, for the cross-document check.
struct Reference {
    finding: Finding,
    namespace: String,
    name: String,
}

impl Validator {
    /// Compiles the schemas of all our kinds.
    pub fn new() -> Result<Self, SchemaLoadError> {
        let mut kinds = HashMap::new();
        for (_, crd) in egress_api::crds::all() {
            let kind = crd.spec.names.kind.clone();
            let schema = egress_api::crds::schema_of(&crd).unwrap_or(Value::Null);
            let validator = SchemaValidator::new(&schema).map_err(|source| SchemaLoadError {
                kind: kind.clone(),
                source,
            })?;
            kinds.insert(kind, (validator, schema));
        }
        let warnings =
            PolicyRules::new(&egress_api::warnings::policy_rules()).map_err(|source| {
                SchemaLoadError {
                    kind: "the StaticGatewayConfiguration warning policy".into(),
                    source,
                }
            })?;
        Ok(Self { kinds, warnings })
    }

    /// The admission warnings of a StaticGatewayConfiguration (as stored after defaulting),
    /// as `(field, message)`; `old` is the stored version for an update.
    pub fn sgc_warnings(&self, sgc: &Value, old: Option<&Value>) -> Vec<(String, String)> {
        self.warnings
            .warnings(sgc, old)
            .into_iter()
            .map(|m| split_field(&m))
            .collect()
    }

    /// Checks every document; cross-document references are resolved among `docs`.
    pub fn validate(&self, docs: &[Document]) -> Report {
        let mut report = Report {
            documents: docs.len(),
            ..Report::default()
        };
        let mut sgcs = HashSet::new();
        let mut refs = Vec::new();
        for doc in docs {
            self.validate_one(doc, &mut report, &mut sgcs, &mut refs);
        }
        for r in refs {
            if !sgcs.contains(&(r.namespace.clone(), r.name.clone())) {
                let ns = if r.namespace.is_empty() {
                    "the target namespace".to_string()
                } else {
                    format!("namespace {:?}", r.namespace)
                };
                report.findings.push(Finding {
                    severity: Severity::Warning,
                    message: format!(
                        "StaticGatewayConfiguration {:?} is not among the validated manifests; it must exist in {ns} or these pods cannot start",
                        r.name
                    ),
                    ..r.finding
                });
            }
        }
        report
            .findings
            .sort_by(|a, b| (&a.source, a.index).cmp(&(&b.source, b.index)));
        report
    }

    fn validate_one(
        &self,
        doc: &Document,
        report: &mut Report,
        sgcs: &mut HashSet<(String, String)>,
        refs: &mut Vec<Reference>,
    ) {
        let finding = |object: &str, field: &str, severity, message: String| Finding {
            source: doc.source.clone(),
            index: doc.index,
            object: object.to_string(),
            field: field.to_string(),
            severity,
            message,
        };
        let obj = match &doc.value {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                report.findings.push(finding(
                    "-",
                    "",
                    Severity::Error,
                    "document is not a YAML mapping".into(),
                ));
                return;
            }
            Err(msg) => {
                report
                    .findings
                    .push(finding("-", "", Severity::Error, msg.clone()));
                return;
            }
        };
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let object = format!("{}/{name}", if kind.is_empty() { "-" } else { kind });
        if api_version.is_empty() || kind.is_empty() {
            let missing = if api_version.is_empty() {
                "apiVersion"
            } else {
                "kind"
            };
            report.findings.push(finding(
                &object,
                missing,
                Severity::Error,
                "Required value: every manifest needs apiVersion and kind".into(),
            ));
            return;
        }
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some((group, version)) = api_version.split_once('/').filter(|(g, _)| *g == GROUP) {
            report.owned += 1;
            let problems = self.check_owned(group, version, kind, obj);
            if kind == "StaticGatewayConfiguration"
                && problems.iter().all(|(_, s, _)| *s != Severity::Error)
            {
                sgcs.insert((namespace, name.to_string()));
            }
            for (field, severity, message) in problems {
                report
                    .findings
                    .push(finding(&object, &field, severity, message));
            }
            return;
        }
        let Some(pod) = workloads::pod_template(api_version, kind, obj) else {
            report.ignored += 1;
            return;
        };
        let annotation = pod.metadata.and_then(|m| {
            m.pointer(&format!(
                "/annotations/{}",
                POD_ANNOTATION.replace('/', "~1")
            ))
        });
        let host_network = pod
            .spec
            .and_then(|s| s.get("hostNetwork"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut problems = Vec::new();
        let field = format!("{}metadata.annotations", pod.path);
        let annotation_text = match annotation {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                report.findings.push(finding(
                    &object,
                    &format!("{field}[{POD_ANNOTATION}]"),
                    Severity::Error,
                    "must be a string naming a StaticGatewayConfiguration".into(),
                ));
                None
            }
            None => None,
        };
        if let Some(sgc) =
            semantics::check_pod_annotation(annotation_text, host_network, &field, &mut problems)
        {
            refs.push(Reference {
                finding: finding(
                    &object,
                    &format!("{field}[{POD_ANNOTATION}]"),
                    Severity::Warning,
                    String::new(),
                ),
                namespace,
                name: sgc,
            });
        }
        for p in problems {
            report
                .findings
                .push(finding(&object, &p.field, p.severity, p.message));
        }
    }

    /// Admission of one of our kinds: version, name, unknown fields (kubectl's strict field
    /// validation), schema and CEL, then semantic checks.
    fn check_owned(
        &self,
        _group: &str,
        version: &str,
        kind: &str,
        obj: &Value,
    ) -> Vec<(String, Severity, String)> {
        let mut out = Vec::new();
        if version != VERSION {
            out.push((
                "apiVersion".into(),
                Severity::Error,
                format!("{GROUP}/{version} is not served; use {GROUP}/{VERSION}"),
            ));
            return out;
        }
        let Some((validator, schema)) = self.kinds.get(kind) else {
            let mut known: Vec<&str> = self.kinds.keys().map(String::as_str).collect();
            known.sort_unstable();
            out.push((
                "kind".into(),
                Severity::Error,
                format!(
                    "{kind:?} is not a kind of {GROUP} (known: {})",
                    known.join(", ")
                ),
            ));
            return out;
        };
        check_name(obj, &mut out);
        let mut admitted = obj.clone();
        let (pruned, errors) = validator.admit(&mut admitted, None);
        for path in pruned {
            let hint = suggest(schema, &path)
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            out.push((
                path.clone(),
                Severity::Error,
                format!("unknown field {path:?}{hint}"),
            ));
        }
        for e in errors {
            out.push((e.field.clone(), Severity::Error, e.message()));
        }
        if kind == "StaticGatewayConfiguration" {
            // What the cluster would warn about, also next to errors (as the server's answer
            // to a refused write would not show them, but the user fixes both at once).
            // A field that already has an error gets no second finding.
            let errored: HashSet<String> = out.iter().map(|(f, _, _)| f.clone()).collect();
            out.extend(
                self.sgc_warnings(&admitted, None)
                    .into_iter()
                    .filter(|(field, _)| !errored.contains(field))
                    .map(|(field, message)| (field, Severity::Warning, message)),
            );
        }
        if out.iter().all(|(_, s, _)| *s != Severity::Error) {
            match kind {
                "StaticGatewayConfiguration" => {
                    semantic(
                        &admitted,
                        &mut out,
                        |sgc: egress_api::StaticGatewayConfiguration| {
                            semantics::check_sgc(&sgc.spec)
                        },
                    );
                }
                "PodEndpoint" => semantic(&admitted, &mut out, |pe: egress_api::PodEndpoint| {
                    semantics::check_pod_endpoint(&pe.spec)
                }),
                _ => {}
            }
        }
        out
    }
}

/// Decodes an admitted object as `K` and adds the semantic findings `check` gives.
fn semantic<K: serde::de::DeserializeOwned>(
    admitted: &Value,
    out: &mut Vec<(String, Severity, String)>,
    check: impl FnOnce(K) -> Vec<semantics::Problem>,
) {
    match serde_json::from_value::<K>(admitted.clone()) {
        Ok(obj) => out.extend(
            check(obj)
                .into_iter()
                .map(|p| (p.field, p.severity, p.message)),
        ),
        Err(e) => out.push((
            String::new(),
            Severity::Error,
            format!("failed to decode: {e}"),
        )),
    }
}

/// `spec.excludeCidrs: "x" is not ...` → (`spec.excludeCidrs`, `"x" is not ...`): the policy's
/// messages start with the field they are about.
fn split_field(message: &str) -> (String, String) {
    match message.split_once(": ") {
        Some((field, rest))
            if field == "spec" || field.starts_with("spec.") && !field.contains(' ') =>
        {
            (field.to_string(), rest.to_string())
        }
        _ => (String::new(), message.to_string()),
    }
}

fn check_name(obj: &Value, out: &mut Vec<(String, Severity, String)>) {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str);
    let generate = obj
        .pointer("/metadata/generateName")
        .and_then(Value::as_str);
    match name {
        None if generate.is_none() => out.push(("metadata.name".into(), Severity::Error, "Required value: name or generateName is required".into())),
        Some(n) if !is_dns_subdomain(n) => out.push((
            "metadata.name".into(),
            Severity::Error,
            format!("Invalid value: {n:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        )),
        _ => {}
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.starts_with(ok)
        && s.ends_with(ok)
        && s.chars().all(|c| ok(c) || c == '-' || c == '.')
}

/// For an unknown field, a declared sibling that differs only in case (`excludeCIDRs`).
fn suggest(schema: &Value, path: &str) -> Option<String> {
    let mut node = schema;
    let parts: Vec<&str> = path.split('.').collect();
    let (last, parents) = parts.split_last()?;
    for part in parents {
        let (name, indexed) = match part.split_once('[') {
            Some((n, _)) => (n, true),
            None => (*part, false),
        };
        node = node.pointer(&format!("/properties/{name}"))?;
        if indexed {
            node = node.get("items")?;
        }
    }
    let props = node.get("properties")?.as_object()?;
    props
        .keys()
        .find(|k| {
            k.eq_ignore_ascii_case(last)
                || k.replace('-', "")
                    .eq_ignore_ascii_case(&last.replace('-', ""))
        })
        .cloned()
}
