//! Every example and every object the original project stores survives a trip through our Rust
//! types: no field lost, renamed or reshaped (schema defaults are the only additions, as on a
//! real API server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_api::{
    GatewayLBConfiguration, GatewayStatus, GatewayVMConfiguration, PodEndpoint,
    StaticGatewayConfiguration,
};
use egress_schema::SchemaValidator;
use egressctl::input;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn schema_for(kind: &str) -> SchemaValidator {
    let (_, crd) = egress_api::crds::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .unwrap();
    SchemaValidator::new(&egress_api::crds::schema_of(&crd).unwrap()).unwrap()
}

fn through<T: DeserializeOwned + Serialize>(v: &Value) -> Value {
    let typed: T = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(typed).unwrap()
}

fn check_file(path: &str) -> usize {
    let mut checked = 0;
    for doc in input::read(path).unwrap() {
        let original = doc.value.unwrap();
        let kind = original["kind"].as_str().unwrap().to_string();
        let back = match kind.as_str() {
            "StaticGatewayConfiguration" => through::<StaticGatewayConfiguration>,
            "GatewayLBConfiguration" => through::<GatewayLBConfiguration>,
            "GatewayVMConfiguration" => through::<GatewayVMConfiguration>,
            "PodEndpoint" => through::<PodEndpoint>,
            "GatewayStatus" => through::<GatewayStatus>,
            _ => continue,
        };
        let mut expected = original.clone();
        let (pruned, errors) = schema_for(&kind).admit(&mut expected, None);
        assert!(
            pruned.is_empty(),
            "{path}:{}: schema drops {pruned:?}",
            doc.index
        );
        assert!(errors.is_empty(), "{path}:{}: {errors:?}", doc.index);
        assert_eq!(
            back(&expected),
            expected,
            "{path}:{}: {kind} changed in a round trip",
            doc.index
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_example_round_trips_unchanged() {
    let mut n = 0;
    for entry in std::fs::read_dir("../../examples").unwrap() {
        n += check_file(entry.unwrap().path().to_str().unwrap());
    }
    assert!(n >= 5, "expected at least five SGC examples, found {n}");
}

#[test]
fn objects_written_by_the_original_round_trip_unchanged() {
    assert_eq!(check_file("tests/fixtures/original-objects.yaml"), 5);
}

#[test]
fn defaults_match_the_original() {
    let mut v = serde_json::json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "x"},
        "spec": {"gatewayNodepoolName": "p"}
    });
    let (_, errors) = schema_for("StaticGatewayConfiguration").admit(&mut v, None);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(v["spec"]["defaultRoute"], "staticEgressGateway");
    assert_eq!(v["spec"]["provisionPublicIps"], true);
    let sgc: StaticGatewayConfiguration = serde_json::from_value(v).unwrap();
    assert!(sgc.spec.target.provision_public_ips);
}
