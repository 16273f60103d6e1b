//! Drop-in admission: every manifest the original project's published CRDs accept is accepted
//! by ours (the same schema engine the in-memory API server and `egressctl` use). The
//! original's schemas are written here from its documented shape (docs/api.md, "Compatibility"):
//! plain strings without formats or lengths, `publicIpPrefixSize` an int32 in 0..=31,
//! `defaultRoute` one of two values with a default, `provisionPublicIps` a required boolean with
//! default `true`, no CEL. Manifests are generated from those schemas: every boundary value and
//! a few thousand random combinations (fixed seed), each first checked against the original's
//! schema, then against ours.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_schema::SchemaValidator;
use serde_json::{Value, json};

fn original_target() -> Value {
    json!({
        "type": "object",
        "required": ["provisionPublicIps"],
        "properties": {
            "gatewayNodepoolName": {"type": "string"},
            "gatewayVmssProfile": {"type": "object", "properties": {
                "vmssResourceGroup": {"type": "string"},
                "vmssName": {"type": "string"},
                "publicIpPrefixSize": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 31}
            }},
            "provisionPublicIps": {"type": "boolean", "default": true},
            "publicIpPrefixId": {"type": "string"}
        }
    })
}

fn original_sgc() -> Value {
    let mut spec = original_target();
    let props = spec["properties"].as_object_mut().unwrap();
    props.insert(
        "defaultRoute".into(),
        json!({"type": "string", "enum": ["azureNetworking", "staticEgressGateway"], "default": "staticEgressGateway"}),
    );
    props.insert(
        "excludeCidrs".into(),
        json!({"type": "array", "items": {"type": "string"}}),
    );
    root(spec)
}

fn root(spec: Value) -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"type": "object"}, "spec": spec, "status": {"type": "object"}
    }})
}

fn ours(kind: &str) -> SchemaValidator {
    let (_, crd) = egress_api::crds::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .unwrap();
    SchemaValidator::new(&egress_api::crds::schema_of(&crd).unwrap()).unwrap()
}

const STRINGS: &[&str] = &[
    "",
    "gwpool",
    "rg",
    "Not A Valid Name!",
    "10.0.0.0/8",
    "bogus",
    "10.0.0.0/33",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p",
];

/// A random spec of the original's shape (only fields it declares, values its schema allows).
fn random_spec(rng: &mut fastrand::Rng) -> Value {
    let mut spec = serde_json::Map::new();
    let s = |rng: &mut fastrand::Rng| json!(STRINGS[rng.usize(..STRINGS.len())]);
    if rng.bool() {
        spec.insert("gatewayNodepoolName".into(), s(rng));
    }
    if rng.bool() {
        let mut p = serde_json::Map::new();
        for f in ["vmssResourceGroup", "vmssName"] {
            if rng.bool() {
                p.insert(f.into(), s(rng));
            }
        }
        if rng.bool() {
            p.insert("publicIpPrefixSize".into(), json!(rng.i64(0..=31)));
        }
        spec.insert("gatewayVmssProfile".into(), Value::Object(p));
    }
    if rng.bool() {
        spec.insert("provisionPublicIps".into(), json!(rng.bool()));
    }
    if rng.bool() {
        spec.insert("publicIpPrefixId".into(), s(rng));
    }
    if rng.bool() {
        let route = ["azureNetworking", "staticEgressGateway"][rng.usize(..2)];
        spec.insert("defaultRoute".into(), json!(route));
    }
    if rng.bool() {
        let n = rng.usize(..4);
        spec.insert(
            "excludeCidrs".into(),
            Value::Array((0..n).map(|_| s(rng)).collect()),
        );
    }
    Value::Object(spec)
}

fn object(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": kind,
        "metadata": {"name": "x", "namespace": "d"}, "spec": spec})
}

/// `obj` passes the original's schema (sanity) and ours; on update, `old` is the stored one.
fn accepted_by_both(
    original: &SchemaValidator,
    ours: &SchemaValidator,
    obj: &Value,
    old: Option<&Value>,
) {
    let mut o = obj.clone();
    let (pruned, errors) = original.admit(&mut o, None);
    assert!(
        pruned.is_empty() && errors.is_empty(),
        "generator bug: the original's schema refuses {obj}: {errors:?}"
    );
    let mut o = obj.clone();
    let (pruned, errors) = ours.admit(&mut o, old);
    assert!(
        pruned.is_empty() && errors.is_empty(),
        "refused a manifest the original accepts: {obj}\n{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_static_gateway_configuration_the_original_accepts_is_accepted() {
    let original = SchemaValidator::new(&original_sgc()).unwrap();
    let ours = ours("StaticGatewayConfiguration");
    // Boundaries: every prefix size in both modes, the manifest, both pools, none.
    for size in 0..=31 {
        for public in [true, false] {
            let spec = json!({"gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": "gw",
                "publicIpPrefixSize": size}, "provisionPublicIps": public});
            accepted_by_both(
                &original,
                &ours,
                &object("StaticGatewayConfiguration", spec),
                None,
            );
        }
    }
    let mut rng = fastrand::Rng::with_seed(18);
    let mut previous: Option<Value> = None;
    for _ in 0..3000 {
        let obj = object("StaticGatewayConfiguration", random_spec(&mut rng));
        accepted_by_both(&original, &ours, &obj, None);
        // ... and as an update of the previous one (the original has no immutable fields).
        if let Some(mut old) = previous.take() {
            ours.apply_defaults(&mut old);
            accepted_by_both(&original, &ours, &obj, Some(&old));
        }
        previous = Some(obj);
    }
}

#[test]
fn internal_kinds_the_original_accepts_are_accepted() {
    let original = SchemaValidator::new(&root(original_target())).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    for kind in ["GatewayLBConfiguration", "GatewayVMConfiguration"] {
        let ours = ours(kind);
        for _ in 0..500 {
            let mut spec = random_spec(&mut rng);
            let m = spec.as_object_mut().unwrap();
            m.remove("defaultRoute");
            m.remove("excludeCidrs");
            accepted_by_both(&original, &ours, &object(kind, spec), None);
        }
    }
    // PodEndpoint: three plain strings in the original.
    let original = SchemaValidator::new(&root(json!({"type": "object", "properties": {
        "podIpAddress": {"type": "string"}, "podPublicKey": {"type": "string"},
        "staticGatewayConfiguration": {"type": "string"}}})))
    .unwrap();
    let ours = ours("PodEndpoint");
    for ip in ["10.244.1.5/32", "10.244.1.5", "", "fd00::1/128", "junk"] {
        for key in ["", "short", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdE="] {
            let spec = json!({"podIpAddress": ip, "podPublicKey": key, "staticGatewayConfiguration": "gw"});
            accepted_by_both(&original, &ours, &object("PodEndpoint", spec), None);
        }
    }
}
