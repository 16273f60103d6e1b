//! The CustomResourceDefinitions of all five kinds, as `crdgen` writes them to `config/crd/`
//! and as `egressctl validate` checks manifests against them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;
use serde_json::Value;

use crate::{
    GatewayLBConfiguration, GatewayStatus, GatewayVMConfiguration, PodEndpoint,
    StaticGatewayConfiguration,
};

/// Every CRD with the file name it is written to (`<plural>.yaml`).
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    [
        StaticGatewayConfiguration::crd(),
        GatewayLBConfiguration::crd(),
        GatewayVMConfiguration::crd(),
        PodEndpoint::crd(),
        GatewayStatus::crd(),
    ]
    .into_iter()
    .map(|mut crd| {
        for version in &mut crd.spec.versions {
            if let Some(props) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                normalize(props);
            }
        }
        (format!("{}.yaml", crd.spec.names.plural), crd)
    })
    .collect()
}

/// The `openAPIV3Schema` of a CRD's first (only) version, as JSON.
pub fn schema_of(crd: &CustomResourceDefinition) -> Option<Value> {
    let schema = crd
        .spec
        .versions
        .first()?
        .schema
        .as_ref()?
        .open_api_v3_schema
        .as_ref()?;
    serde_json::to_value(schema).ok()
}

/// Our types never write `null` (optional fields are omitted), so `nullable` only loosened
/// the schema: a `null` would pass and then satisfy `has()` in CEL rules. The original's
/// schema has no `nullable` either.
fn normalize(props: &mut JSONSchemaProps) {
    let Ok(mut v) = serde_json::to_value(&*props) else {
        return;
    };
    walk(&mut v);
    if let Ok(p) = serde_json::from_value(v) {
        *props = p;
    }
}

fn walk(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("nullable");
            map.values_mut().for_each(walk);
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}
