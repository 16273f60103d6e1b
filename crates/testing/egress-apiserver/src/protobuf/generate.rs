//! Generates `k8s-schema.json` (test only): the protobuf schema of the kinds the server
//! speaks protobuf for, read from the maintained Kubernetes protobuf types of the `k8s-pb`
//! crate (its prost attributes carry each field's tag, wire type and message type) with the
//! exact JSON names from `k8s-openapi`'s schemas (k8s-pb's Rust field names are snake case,
//! so `podIP` and `podIp` cannot be told apart there). Only messages reachable from the served
//! kinds are kept. `EGRESS_PROTO_SCHEMA_UPDATE=1 cargo test -p egress-apiserver
//! protobuf_schema_is_up_to_date` rewrites the file; without it the test fails when the file
//! is stale.

// Test-only code: a generator that cannot read its sources stops with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::Value;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Fields, GenericArgument, Item, Lit, Meta, PathArguments, Token, Type};

use super::schema::{FieldDef, Schema};

/// k8s-pb modules (directories under its `src/`) whose messages may be reached.
const MODULES: &[&str] = &[
    "api/core/v1",
    "api/apps/v1",
    "api/autoscaling/v1",
    "api/coordination/v1",
    "api/events/v1",
    "api/admissionregistration/v1",
    "apimachinery/pkg/apis/meta/v1",
    "apimachinery/pkg/api/resource",
    "apimachinery/pkg/util/intstr",
    "apimachinery/pkg/runtime",
];

/// The messages the server encodes and decodes (everything they reach is included).
const ROOTS: &[&str] = &[
    "k8s.io.api.core.v1.Namespace",
    "k8s.io.api.core.v1.NamespaceList",
    "k8s.io.api.core.v1.Node",
    "k8s.io.api.core.v1.NodeList",
    "k8s.io.api.core.v1.Pod",
    "k8s.io.api.core.v1.PodList",
    "k8s.io.api.core.v1.Secret",
    "k8s.io.api.core.v1.SecretList",
    "k8s.io.api.core.v1.ConfigMap",
    "k8s.io.api.core.v1.ConfigMapList",
    "k8s.io.api.core.v1.Event",
    "k8s.io.api.core.v1.EventList",
    "k8s.io.api.events.v1.Event",
    "k8s.io.api.events.v1.EventList",
    "k8s.io.api.coordination.v1.Lease",
    "k8s.io.api.coordination.v1.LeaseList",
    "k8s.io.api.apps.v1.Deployment",
    "k8s.io.api.apps.v1.DeploymentList",
    "k8s.io.api.apps.v1.ReplicaSet",
    "k8s.io.api.apps.v1.ReplicaSetList",
    "k8s.io.api.autoscaling.v1.Scale",
    "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicy",
    "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyList",
    "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
    "k8s.io.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingList",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "k8s.io.apimachinery.pkg.runtime.Unknown",
];

/// One message as read from k8s-pb: fields with snake-case names.
struct RawMessage {
    fields: Vec<(String, FieldDef)>,
}

fn crate_src(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only the host's packages: offline, a fresh machine has downloaded no other platform's
    // crates (android_system_properties, windows-*), and unfiltered metadata asks for them.
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host_triple()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cargo metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("{name} is not in the dependency graph"));
    Path::new(manifest)
        .parent()
        .map(|d| d.join("src"))
        .unwrap_or_default()
}

/// The host's target triple, as rustc prints it (`host: x86_64-unknown-linux-gnu`).
fn host_triple() -> String {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("rustc -vV: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no host triple in rustc -vV"))
}

fn package_of(module: &[String]) -> String {
    format!("k8s.io.{}", module.join("."))
}

/// The innermost type argument (`Option<Vec<T>>` -> `T`, `BTreeMap<K, V>` -> `V`).
fn innermost(ty: &Type) -> Option<&syn::Path> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if let PathArguments::AngleBracketed(args) = &last.arguments {
        let inner = args.args.iter().rev().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })?;
        return innermost(inner);
    }
    Some(&tp.path)
}

/// The full proto name of the message type `path` used in `module`.
fn resolve(module: &[String], path: &syn::Path) -> String {
    let mut segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let name = segs.pop().unwrap_or_default();
    let mut base = module.to_vec();
    let mut rest = segs.into_iter().peekable();
    while rest.peek().is_some_and(|s| s == "super") {
        rest.next();
        base.pop();
    }
    base.extend(rest);
    format!("{}.{name}", package_of(&base))
}

fn str_value(e: &Expr) -> String {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => s.value(),
        _ => String::new(),
    }
}

/// Reads one field's `#[prost(...)]` attribute.
fn field_def(module: &[String], attr: &syn::Attribute, ty: &Type) -> FieldDef {
    let metas = attr
        .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .unwrap_or_else(|e| panic!("prost attribute: {e}"));
    let mut def = FieldDef::default();
    let mut kind = String::new();
    for m in metas {
        match m {
            Meta::Path(p) => {
                let id = p.get_ident().map(|i| i.to_string()).unwrap_or_default();
                match id.as_str() {
                    "optional" | "required" => {}
                    "repeated" => def.repeated = true,
                    "packed" => {}
                    other => kind = other.to_string(),
                }
            }
            Meta::NameValue(nv) => {
                let key = nv
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                let v = str_value(&nv.value);
                match key.as_str() {
                    "tag" => def.tag = v.parse().unwrap_or_else(|_| panic!("tag {v:?}")),
                    "bytes" => kind = "bytes".into(),
                    "map" | "btree_map" | "hash_map" => {
                        let value = v.split(',').nth(1).unwrap_or("").trim().to_string();
                        kind = format!("map<string,{value}>");
                    }
                    "packed" => {}
                    other => panic!("unsupported prost attribute {other}"),
                }
            }
            Meta::List(l) => panic!("unsupported prost attribute {:?}", l.path.get_ident()),
        }
    }
    if kind == "message" || kind == "map<string,message>" {
        let path = innermost(ty).unwrap_or_else(|| panic!("no message type"));
        def.message = Some(resolve(module, path));
    }
    assert!(
        matches!(
            kind.as_str(),
            "string"
                | "bytes"
                | "bool"
                | "int32"
                | "int64"
                | "uint32"
                | "uint64"
                | "double"
                | "float"
                | "message"
                | "map<string,string>"
                | "map<string,bytes>"
                | "map<string,message>"
        ),
        "unsupported field type {kind}"
    );
    def.kind = kind;
    def
}

fn is_message(item: &syn::ItemStruct) -> bool {
    item.attrs.iter().any(|a| {
        a.path().is_ident("derive")
            && a.meta
                .require_list()
                .map(|l| l.tokens.to_string().contains("Message"))
                .unwrap_or(false)
    })
}

fn read_module(src: &Path, module: &str, out: &mut BTreeMap<String, RawMessage>) {
    let file = src.join(module).join("mod.rs");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let path: Vec<String> = module.split('/').map(str::to_string).collect();
    for item in parsed.items {
        let Item::Struct(s) = item else { continue };
        if !is_message(&s) {
            continue;
        }
        let Fields::Named(named) = &s.fields else {
            continue;
        };
        let mut fields = Vec::new();
        for f in &named.named {
            let Some(attr) = f.attrs.iter().find(|a| a.path().is_ident("prost")) else {
                continue;
            };
            let name = f
                .ident
                .as_ref()
                .map(|i| i.to_string().trim_start_matches("r#").to_string())
                .unwrap_or_default();
            fields.push((name, field_def(&path, attr, &f.ty)));
        }
        out.insert(
            format!("{}.{}", package_of(&path), s.ident),
            RawMessage { fields },
        );
    }
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').enumerate() {
        let mut cs = part.chars();
        match (i, cs.next()) {
            (0, Some(c)) => out.extend(std::iter::once(c).chain(cs)),
            (_, Some(c)) => out.extend(c.to_uppercase().chain(cs)),
            (_, None) => {}
        }
    }
    out
}

/// Every JSON Schema definition k8s-openapi has for the served kinds: `io.k8s...` name ->
/// property names.
fn openapi_properties() -> BTreeMap<String, Vec<String>> {
    use k8s_openapi::api::{admissionregistration, apps, autoscaling, coordination, core, events};
    use k8s_openapi::apimachinery::pkg::apis::meta;
    let mut generator = schemars::SchemaGenerator::default();
    generator.subschema_for::<core::v1::Namespace>();
    generator.subschema_for::<core::v1::Node>();
    generator.subschema_for::<core::v1::Pod>();
    generator.subschema_for::<core::v1::Secret>();
    generator.subschema_for::<core::v1::ConfigMap>();
    generator.subschema_for::<core::v1::Event>();
    generator.subschema_for::<events::v1::Event>();
    generator.subschema_for::<coordination::v1::Lease>();
    generator.subschema_for::<apps::v1::Deployment>();
    generator.subschema_for::<apps::v1::ReplicaSet>();
    generator.subschema_for::<autoscaling::v1::Scale>();
    generator.subschema_for::<admissionregistration::v1::ValidatingAdmissionPolicy>();
    generator.subschema_for::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>();
    generator.subschema_for::<meta::v1::Status>();
    generator.subschema_for::<meta::v1::DeleteOptions>();
    generator
        .definitions()
        .iter()
        .map(|(name, schema)| {
            let props = schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (name.to_lowercase(), props)
        })
        .collect()
}

/// Builds the schema from k8s-pb's and k8s-openapi's sources.
pub fn generate() -> Schema {
    let src = crate_src("k8s-pb");
    let mut raw = BTreeMap::new();
    for m in MODULES {
        read_module(&src, m, &mut raw);
    }
    let props = openapi_properties();
    let mut schema = Schema {
        generated_from: format!(
            "k8s-pb {} (tags, types) and k8s-openapi {} (JSON names); regenerate with EGRESS_PROTO_SCHEMA_UPDATE=1 cargo test -p egress-apiserver protobuf_schema_is_up_to_date",
            version_of(&src),
            version_of(&crate_src("k8s-openapi")),
        ),
        camel_case_names: Vec::new(),
        messages: BTreeMap::new(),
    };
    let mut queue: VecDeque<String> = ROOTS.iter().map(|s| s.to_string()).collect();
    let mut seen = BTreeSet::new();
    // Embedded structs have no schema of their own: their names are the parent's.
    let mut borrowed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let msg = raw
            .get(&name)
            .unwrap_or_else(|| panic!("message {name} is not in the k8s-pb modules read"));
        let openapi_name = format!("io.k8s.{}", name.trim_start_matches("k8s.io."));
        let json_names = props
            .get(&openapi_name.to_lowercase())
            .or_else(|| borrowed.get(&name))
            .cloned();
        let json_names = json_names.as_deref();
        let mut fields = Vec::new();
        for (snake, def) in &msg.fields {
            let mut def = def.clone();
            let exact = json_names
                .and_then(|names| names.iter().find(|n| normalise(n) == normalise(snake)));
            def.json = match (exact, json_names) {
                (Some(n), _) => n.clone(),
                // A Go struct embedded in its parent: a field in protobuf, inlined in JSON.
                (None, Some(names)) if is_inlined(&def, names, &raw) => {
                    if let Some(m) = &def.message {
                        borrowed.insert(m.clone(), names.to_vec());
                    }
                    String::new()
                }
                _ => {
                    schema.camel_case_names.push(format!("{name}.{snake}"));
                    lower_camel(snake)
                }
            };
            if let Some(m) = &def.message {
                queue.push_back(m.clone());
            }
            fields.push(def);
        }
        schema.messages.insert(name, fields);
    }
    schema
}

/// Whether a message field whose name the parent's JSON does not know is an embedded struct:
/// every field of its message is a JSON property of the parent.
fn is_inlined(def: &FieldDef, parent: &[String], raw: &BTreeMap<String, RawMessage>) -> bool {
    let Some(sub) = def.message.as_ref().and_then(|m| raw.get(m)) else {
        return false;
    };
    def.kind == "message"
        && !def.repeated
        && sub.fields.iter().all(|(snake, field)| {
            parent.iter().any(|p| normalise(p) == normalise(snake))
                || is_inlined(field, parent, raw)
        })
}

fn version_of(src: &Path) -> String {
    src.parent()
        .and_then(|d| d.file_name())
        .map(|n| {
            n.to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn protobuf_schema_is_up_to_date() {
        let text = generate().to_text();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protobuf/k8s-schema.json");
        if std::env::var_os("EGRESS_PROTO_SCHEMA_UPDATE").is_some() {
            std::fs::write(&path, &text).unwrap();
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == text,
            "{} is stale: run EGRESS_PROTO_SCHEMA_UPDATE=1 cargo test -p egress-apiserver protobuf_schema_is_up_to_date",
            path.display()
        );
    }

    #[test]
    fn json_names_keep_their_acronyms() {
        let s = Schema::load();
        let status = &s.messages["k8s.io.api.core.v1.PodStatus"];
        assert!(status.iter().any(|f| f.json == "podIP" && f.tag == 6));
        assert!(status.iter().any(|f| f.json == "hostIPs"));
        let meta = &s.messages["k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
        assert!(meta.iter().any(|f| f.json == "generateName" && f.tag == 2));
    }
}
