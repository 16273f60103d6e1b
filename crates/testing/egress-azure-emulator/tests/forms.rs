//! Every long-running operation in every response form its REST specification documents:
//! first status, body, `Azure-AsyncOperation` / `Location` headers, the polling that follows,
//! and the end state; undocumented forms are refused (library, admin endpoint, seed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Answer, Arm, COMPUTE, NET};
use egress_azure_emulator::{EmulatorConfig, ResponseForm, Seed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What an operation is, how to trigger it and where its resource is.
struct Case {
    op: &'static str,
    write: bool,
}

const CASES: &[Case] = &[
    Case {
        op: "LoadBalancers.CreateOrUpdate",
        write: true,
    },
    Case {
        op: "LoadBalancers.Delete",
        write: false,
    },
    Case {
        op: "PublicIPPrefixes.CreateOrUpdate",
        write: true,
    },
    Case {
        op: "PublicIPPrefixes.Delete",
        write: false,
    },
    Case {
        op: "PublicIPAddresses.CreateOrUpdate",
        write: true,
    },
    Case {
        op: "PublicIPAddresses.Delete",
        write: false,
    },
    Case {
        op: "NetworkInterfaces.CreateOrUpdate",
        write: true,
    },
    Case {
        op: "NetworkInterfaces.Delete",
        write: false,
    },
    Case {
        op: "VirtualMachineScaleSets.CreateOrUpdate",
        write: true,
    },
    Case {
        op: "VirtualMachineScaleSets.Update",
        write: true,
    },
    Case {
        op: "VirtualMachineScaleSets.UpdateInstances",
        write: false,
    },
    Case {
        op: "VirtualMachineScaleSetVMs.Update",
        write: true,
    },
];

fn lb_body(arm: &Arm) -> Value {
    json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {"frontendIPConfigurations": [
        {"name": "fe", "properties": {"subnet": {"id": arm.subnet_id()}}}]}})
}

/// (method, path, api-version, body) of the request that starts `op` on resource `n`, after
/// creating what it needs with default forms.
async fn prepare(arm: &Arm, op: &str, n: &str) -> (Method, String, &'static str, Option<Value>) {
    let nic = json!({"location": "eastus", "properties": {"ipConfigurations": [
        {"name": "c", "properties": {"subnet": {"id": arm.subnet_id()}}}]}});
    let pip = json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {}});
    let prefix = json!({"location": "eastus", "properties": {"prefixLength": 31}});
    let vmss = arm.compute("virtualMachineScaleSets/gw-vmss");
    let model = json!({"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": [
        {"name": "gw-vmss", "properties": {"primary": true, "ipConfigurations": [
            {"name": "ipconfig1", "properties": {"primary": true, "subnet": {"id": arm.subnet_id()}}}]}}]}}}});
    let (group, verb) = op.split_once('.').unwrap();
    let (kind, body) = match group {
        "LoadBalancers" => ("loadBalancers", lb_body(arm)),
        "PublicIPPrefixes" => ("publicIPPrefixes", prefix),
        "PublicIPAddresses" => ("publicIPAddresses", pip),
        "NetworkInterfaces" => ("networkInterfaces", nic),
        _ => {
            return match op {
                "VirtualMachineScaleSets.CreateOrUpdate" => {
                    (Method::PUT, vmss, COMPUTE, Some(model))
                }
                "VirtualMachineScaleSets.Update" => (Method::PATCH, vmss, COMPUTE, Some(model)),
                "VirtualMachineScaleSets.UpdateInstances" => (
                    Method::POST,
                    format!("{vmss}/manualupgrade"),
                    COMPUTE,
                    Some(json!({"instanceIds": ["0", "1"]})),
                ),
                _ => (
                    Method::PUT,
                    format!("{vmss}/virtualMachines/1"),
                    COMPUTE,
                    Some(
                        json!({"properties": {"networkProfileConfiguration": model["properties"]["virtualMachineProfile"]["networkProfile"]}}),
                    ),
                ),
            };
        }
    };
    let path = arm.net(kind, n);
    if verb == "Delete" {
        arm.put_done(&path, NET, &body).await;
        (Method::DELETE, path, NET, None)
    } else {
        (Method::PUT, path, NET, Some(body))
    }
}

/// Polls what the first answer points at; returns the number of polls.
async fn follow(arm: &Arm, a: &Answer, resource: &str, api: &str) -> u32 {
    if a.header("azure-asyncoperation").is_some() {
        let (s, polls) = arm.wait_async(a).await;
        assert_eq!(s["status"], "Succeeded", "{s}");
        return polls;
    }
    if a.header("location").is_some() {
        let (s, polls) = arm.wait_location(a).await;
        assert!(s.status.is_success(), "{:?}", s.body);
        return polls;
    }
    // No header: the resource's provisioningState is the monitor.
    for polls in 1..=20 {
        let g = arm.get(resource, api).await;
        if g.body["properties"]["provisioningState"] != "Updating" {
            assert_eq!(g.body["properties"]["provisioningState"], "Succeeded");
            return polls;
        }
    }
    panic!("{resource} stayed Updating")
}

async fn check(arm: &Arm, case: &Case, form: ResponseForm, n: &str) {
    arm.emu.set_response_form(case.op, form).unwrap();
    let (method, path, api, body) = prepare(arm, case.op, n).await;
    let a = arm.send(method, &path, api, body.as_ref(), &[]).await;
    let what = format!("{} as {form}", case.op);
    let expected = match (case.write, form) {
        (true, ResponseForm::Accepted) => StatusCode::ACCEPTED,
        (true, _) if path.contains("/virtualMachineScaleSets/") => StatusCode::OK,
        (true, _) => StatusCode::CREATED,
        (false, ResponseForm::Done) => StatusCode::OK,
        (false, _) => StatusCode::ACCEPTED,
    };
    assert_eq!(a.status, expected, "{what}: {:?}", a.body);
    assert_eq!(
        a.header("azure-asyncoperation").is_some(),
        form.has_async_header(),
        "{what}"
    );
    assert_eq!(
        a.header("location").is_some(),
        form.has_location_header(),
        "{what}"
    );
    let state = &a.body["properties"]["provisioningState"];
    if case.write {
        assert_eq!(
            a.header("etag").as_deref(),
            a.body["etag"].as_str(),
            "{what}"
        );
        let want = if form == ResponseForm::Done {
            "Succeeded"
        } else {
            "Updating"
        };
        assert_eq!(state, want, "{what}");
    } else {
        assert_eq!(a.body, Value::Null, "{what}: no body");
    }
    if form == ResponseForm::Done {
        assert!(a.header("retry-after").is_none(), "{what}: nothing to poll");
    } else {
        assert!(follow(arm, &a, &path, api).await >= 1, "{what}");
    }
    let end = match path.strip_suffix("/manualupgrade") {
        Some(vmss) => format!("{vmss}/virtualMachines/0"),
        None => path.clone(),
    };
    let after = arm.get(&end, api).await;
    match (
        case.write || case.op.ends_with("UpdateInstances"),
        after.status,
    ) {
        (true, StatusCode::OK) => assert_eq!(
            after.body["properties"]["provisioningState"], "Succeeded",
            "{what}"
        ),
        (false, StatusCode::NOT_FOUND) => {}
        other => panic!("{what}: end state {other:?} {:?}", after.body),
    }
}

#[tokio::test]
async fn every_operation_in_every_documented_form() {
    let arm = Arm::start_with(EmulatorConfig {
        lro_polls: 1,
        ..Default::default()
    })
    .await;
    let table = arm.emu.response_forms();
    let mut covered = 0;
    for case in CASES {
        let allowed: Vec<ResponseForm> =
            serde_json::from_value(table[case.op]["allowed"].clone()).unwrap();
        for (i, form) in allowed.into_iter().enumerate() {
            check(&arm, case, form, &format!("r{i}-{}", form.as_str())).await;
            covered += 1;
        }
    }
    assert_eq!(
        table.as_object().unwrap().len(),
        CASES.len(),
        "every LRO has a case"
    );
    assert_eq!(covered, 49, "operation × documented form pairs");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn undocumented_forms_are_refused_everywhere() {
    let arm = Arm::start().await;
    // VMSS PATCH is documented with 200 only: a 202 would break every SDK.
    let e = arm
        .emu
        .set_response_form("VirtualMachineScaleSets.Update", ResponseForm::Accepted)
        .unwrap_err();
    assert!(e.to_string().contains("documents no 'accepted'"), "{e}");
    let admin = format!("{}/admin/responseForms", arm.base);
    let r = arm
        .http
        .put(&admin)
        .json(&json!({"LoadBalancers.CreateOrUpdate": "location"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidResponseForm");
    // A glob takes the operations that allow the form; all-or-nothing per request.
    let r = arm
        .http
        .put(&admin)
        .json(&json!({"*": "location", "LoadBalancers.Delete": "done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let table = arm.fetch(&admin).await.body;
    assert_eq!(table["VirtualMachineScaleSets.Update"]["form"], "location");
    assert_eq!(
        table["LoadBalancers.CreateOrUpdate"]["form"], "async",
        "no location for LB PUT"
    );
    assert_eq!(table["LoadBalancers.Delete"]["form"], "done");
    assert_eq!(
        arm.http.delete(&admin).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let table = arm.fetch(&admin).await.body;
    assert_eq!(table["LoadBalancers.Delete"]["form"], "both");
    arm.emu.shutdown().await;

    let start = |yaml: &'static str| async move {
        let seed = Seed::from_yaml(yaml, std::path::Path::new("s.yaml")).unwrap();
        egress_azure_emulator::Emulator::start(EmulatorConfig {
            seed: Some(seed),
            ..Default::default()
        })
        .await
    };
    let emu = start("responseForms: {'VirtualMachineScaleSetVMs.Update': accepted}\n")
        .await
        .unwrap();
    assert_eq!(
        emu.response_forms()["VirtualMachineScaleSetVMs.Update"]["form"],
        "accepted"
    );
    emu.shutdown().await;
    let err = start("responseForms: {'VirtualMachineScaleSets.Update': accepted}\n")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("response form"), "{err}");
}

#[tokio::test]
async fn a_failed_operation_in_the_done_form_answers_its_error_at_once() {
    use egress_azure_emulator::{FaultKind, FaultRule};
    let arm = Arm::start().await;
    arm.emu
        .set_response_form("LoadBalancers.CreateOrUpdate", ResponseForm::Done)
        .unwrap();
    arm.emu
        .faults()
        .add(
            FaultRule::new(FaultKind::FailLro)
                .operation("LoadBalancers.CreateOrUpdate")
                .count(1),
        )
        .unwrap();
    let path = arm.net("loadBalancers", "lb");
    let a = arm.put(&path, NET, &lb_body(&arm)).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "InternalOperationError")
    );
    assert_eq!(
        arm.get(&path, NET).await.body["properties"]["provisioningState"],
        "Failed"
    );
    arm.emu.shutdown().await;
}
