//! Every documented response form of every write the client makes, scripted: PUT/PATCH answered
//! 200/201 with the body and `Azure-AsyncOperation`, `Location`, both, or nothing (poll the
//! resource), 202 with or without headers, a final body at once; DELETE answered 202 with
//! either or both headers, 200 or 204; and what the client sends afterwards in each case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use egress_azure::models::{LoadBalancer, VmssNetworkProfile, VmssVmNetworkProfileConfiguration};
use egress_azure::{LoadBalancers, ScaleSetVms, ScaleSets};
use serde_json::{Value, json};
use support::{Reply, ScriptedArm, rg};

const LB: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb";
const VMSS: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/gw";
const AO: &str = "/ops/status";
const LOC: &str = "/ops/result";

fn body(state: &str) -> Value {
    json!({"name": "x", "etag": "\"1\"", "properties": {"provisioningState": state}})
}

/// Builds a first answer (it may point at the server's monitor URLs).
type FirstAnswer = fn(&ScriptedArm) -> Reply;

/// A first answer of a write and the requests the client must send after it.
struct Form {
    name: &'static str,
    first: FirstAnswer,
    /// Requests expected after the first: (method, path, count).
    then: &'static [(&'static str, &'static str, usize)],
}

const RES: &str = "<resource>";

fn forms() -> Vec<Form> {
    vec![
        Form {
            name: "200 + Azure-AsyncOperation",
            first: |a| Reply::json(200, body("Updating")).header("azure-asyncoperation", a.url(AO)),
            then: &[("GET", AO, 2), ("GET", RES, 1)],
        },
        Form {
            name: "201 + Location",
            first: |a| Reply::json(201, body("Updating")).header("location", a.url(LOC)),
            then: &[("GET", LOC, 2), ("GET", RES, 1)],
        },
        Form {
            name: "200 + both headers",
            first: |a| {
                Reply::json(200, body("Updating"))
                    .header("azure-asyncoperation", a.url(AO))
                    .header("location", a.url(LOC))
            },
            then: &[("GET", AO, 2), ("GET", LOC, 0), ("GET", RES, 1)],
        },
        Form {
            name: "202 + body + both headers",
            first: |a| {
                Reply::json(202, body("Updating"))
                    .header("location", a.url(LOC))
                    .header("azure-asyncoperation", a.url(AO))
            },
            then: &[("GET", AO, 2), ("GET", RES, 1)],
        },
        Form {
            name: "202 + Location, no body",
            first: |a| Reply::empty(202).header("location", a.url(LOC)),
            then: &[("GET", LOC, 2), ("GET", RES, 1)],
        },
        Form {
            name: "200 Updating, no header (poll the resource)",
            first: |_| Reply::json(200, body("Updating")),
            // Two polls of the resource (Updating, then Succeeded) and the final read.
            then: &[("GET", RES, 3)],
        },
        Form {
            name: "202 without headers (poll the resource)",
            first: |_| Reply::empty(202),
            then: &[("GET", RES, 3)],
        },
        Form {
            name: "200 Succeeded (done at once)",
            first: |_| Reply::json(200, body("Succeeded")),
            then: &[("GET", RES, 0), ("GET", AO, 0)],
        },
    ]
}

/// Both monitors answer "in progress" once, then done (`Location` with `done_status`).
fn monitors(arm: &ScriptedArm, done_status: u16) {
    arm.on(
        "GET",
        AO,
        vec![
            Reply::json(200, json!({"status": "InProgress"})),
            Reply::json(200, json!({"status": "Succeeded"})),
        ],
    );
    arm.on(
        "GET",
        LOC,
        vec![Reply::empty(202), Reply::empty(done_status)],
    );
}

/// Scripts `form` for a write to `path` and the monitors, runs `write`, checks the requests.
async fn check<F, Fut>(form: &Form, method: &str, path: &str, write: F)
where
    F: FnOnce(ScriptedArm) -> Fut,
    Fut: std::future::Future<Output = ScriptedArm>,
{
    let arm = ScriptedArm::start().await;
    arm.on(method, path, vec![(form.first)(&arm)]);
    monitors(&arm, 200);
    // Polled forms see the resource still Updating once; after a monitor said Succeeded, the
    // resource is Succeeded (as in Azure).
    let polls_resource = form.then.iter().any(|(_, p, n)| *p == RES && *n > 1);
    let resource = if polls_resource {
        vec![
            Reply::json(200, body("Updating")),
            Reply::json(200, body("Succeeded")),
        ]
    } else {
        vec![Reply::json(200, body("Succeeded"))]
    };
    arm.on("GET", path, resource);
    let arm = write(arm).await;
    assert_eq!(arm.count(method, path), 1, "{}: written once", form.name);
    for (m, p, n) in form.then {
        let p = if *p == RES { path } else { p };
        assert_eq!(
            arm.count(m, p),
            *n,
            "{} {method} {path}: {m} {p}",
            form.name
        );
    }
}

#[tokio::test]
async fn load_balancer_put_in_every_form() {
    for form in forms() {
        check(&form, "PUT", LB, |arm| async move {
            let lb = arm
                .client()
                .create_or_update_load_balancer(
                    &rg().load_balancer("lb"),
                    &LoadBalancer::default(),
                    None,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", form.name));
            assert_eq!(
                lb.properties.provisioning_state.as_deref(),
                Some("Succeeded"),
                "{}",
                form.name
            );
            arm
        })
        .await;
    }
}

#[tokio::test]
async fn scale_set_patch_and_instance_put_in_every_form() {
    for form in forms() {
        check(&form, "PATCH", VMSS, |arm| async move {
            arm.client()
                .update_scale_set_network_profile(
                    &rg().scale_set("gw"),
                    &VmssNetworkProfile::default(),
                    Some("\"1\""),
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", form.name));
            arm
        })
        .await;
        let inst = format!("{VMSS}/virtualMachines/0");
        check(&form, "PUT", &inst, |arm| async move {
            let id = rg().scale_set("gw").child("virtualMachines", "0");
            arm.client()
                .update_scale_set_vm_network_profile(
                    &id,
                    "eastus",
                    &VmssVmNetworkProfileConfiguration::default(),
                    None,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", form.name));
            arm
        })
        .await;
    }
}

#[tokio::test]
async fn load_balancer_delete_in_every_form() {
    let cases: Vec<(&str, FirstAnswer, usize, usize)> = vec![
        (
            "202 + both",
            |a| {
                Reply::empty(202)
                    .header("azure-asyncoperation", a.url(AO))
                    .header("location", a.url(LOC))
            },
            2,
            0,
        ),
        (
            "202 + Location",
            |a| Reply::empty(202).header("location", a.url(LOC)),
            0,
            2,
        ),
        (
            "202 + Azure-AsyncOperation",
            |a| Reply::empty(202).header("azure-asyncoperation", a.url(AO)),
            2,
            0,
        ),
        ("200", |_| Reply::empty(200), 0, 0),
        ("204", |_| Reply::empty(204), 0, 0),
    ];
    for (name, first, ao_polls, loc_polls) in cases {
        let arm = ScriptedArm::start().await;
        arm.on("DELETE", LB, vec![first(&arm)]);
        monitors(&arm, 204);
        arm.client()
            .delete_load_balancer(&rg().load_balancer("lb"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (arm.count("GET", AO), arm.count("GET", LOC)),
            (ao_polls, loc_polls),
            "{name}"
        );
    }
}

#[tokio::test]
async fn lists_follow_next_link_across_pages() {
    let arm = ScriptedArm::start().await;
    let list = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets";
    let page = |names: &[&str], next: Option<String>| {
        let mut b = json!({"value": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()});
        if let Some(n) = next {
            b["nextLink"] = json!(n);
        }
        Reply::json(200, b)
    };
    arm.on(
        "GET",
        list,
        vec![
            page(
                &["a"],
                Some(arm.url(&format!("{list}?api-version=2024-07-01&$skiptoken=1"))),
            ),
            page(
                &["b"],
                Some(arm.url(&format!("{list}?api-version=2024-07-01&$skiptoken=2"))),
            ),
            page(&["c"], None),
        ],
    );
    let got = arm.client().list_scale_sets(&rg()).await.unwrap();
    let names: Vec<_> = got.iter().map(|v| v.name.clone().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let queries: Vec<String> = arm.log().iter().map(|s| s.query.clone()).collect();
    assert!(
        queries[1].contains("skiptoken=1") && queries[2].contains("skiptoken=2"),
        "{queries:?}"
    );
}
