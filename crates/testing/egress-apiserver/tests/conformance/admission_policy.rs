//! ValidatingAdmissionPolicies and bindings evaluated for real: CEL over `object`,
//! `oldObject`, `request` (with the impersonated `userInfo`: username, groups, extra) and a
//! null `params`; matchConstraints by operation and resource, binding matchResources,
//! matchConditions, variables, messageExpression, reason, failurePolicy, validationActions
//! Deny (the real server's Status) and Warn (a `Warning` header); policies that do not compile
//! are refused; kubectl's `--as`/`--as-group` impersonate.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use egress_apiserver::{RunningApiServer, UserInfo};

use crate::common::{Kubectl, TempDir, raw, start, widget, widget_resource};

/// The Status of a refused request.
fn status<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn widgets(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &widget_resource())
}

/// Creates a policy on widgets (`spec` merged over the match constraints) and its binding.
async fn policy(server: &RunningApiServer, name: &str, spec: Value, actions: &[&str]) {
    let client = server.client().unwrap();
    let mut full = json!({"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
        "apiGroups": ["example.com"], "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["widgets"]}]}});
    json_patch::merge(&mut full, &spec);
    let p: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name}, "spec": full}))
    .unwrap();
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&PostParams::default(), &p)
        .await
        .unwrap();
    binding(
        server,
        name,
        json!({"policyName": name, "validationActions": actions}),
    )
    .await;
}

async fn binding(server: &RunningApiServer, name: &str, spec: Value) {
    let b: ValidatingAdmissionPolicyBinding =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    Api::<ValidatingAdmissionPolicyBinding>::all(server.client().unwrap())
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(serde_json::to_value(b).unwrap()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_denial_is_the_real_servers_status_and_warn_is_a_header() {
    let server = start().await;
    policy(
        &server,
        "max-size",
        json!({"validations": [{
            "expression": "object.spec.size <= 5",
            "messageExpression": "'size ' + string(object.spec.size) + ' is above 5'",
        }]}),
        &["Deny"],
    )
    .await;
    let api = widgets(&server.client().unwrap(), "default");
    api.create(&PostParams::default(), &widget("small", 3))
        .await
        .unwrap();
    let s = status(api.create(&PostParams::default(), &widget("big", 9)).await);
    let cause = "ValidatingAdmissionPolicy 'max-size' with binding 'max-size' denied request: size 9 is above 5";
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        s.message,
        format!("widgets.example.com \"big\" is forbidden: {cause}")
    );
    let details = s.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("big", "example.com", "widgets")
    );
    assert_eq!(details.causes[0].message, cause);

    // Warn: admitted, with the failure in a Warning header.
    binding(
        &server,
        "max-size",
        json!({"policyName": "max-size", "validationActions": ["Warn"]}),
    )
    .await;
    let body = serde_json::to_string(&widget("warned", 9)).unwrap();
    let (code, headers, _) = raw(
        &server,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        &[("content-type", "application/json")],
        Some(&body),
    )
    .await;
    assert_eq!(code, 201);
    let warning = headers.get("warning").unwrap().to_str().unwrap();
    assert_eq!(
        warning,
        "299 - \"Validation failed for ValidatingAdmissionPolicy 'max-size' with binding 'max-size': size 9 is above 5\""
    );
    // Audit: admitted, nothing to see (there is no audit log).
    binding(
        &server,
        "max-size",
        json!({"policyName": "max-size", "validationActions": ["Audit"]}),
    )
    .await;
    api.create(&PostParams::default(), &widget("audited", 9))
        .await
        .unwrap();
}

#[tokio::test]
async fn user_info_is_the_impersonated_identity_with_groups_and_extra() {
    let server = start().await;
    policy(
        &server,
        "node-writers",
        json!({"validations": [
            {"expression": "request.userInfo.username == 'system:serviceaccount:kube-system:writer'",
             "messageExpression": "'not the writer: ' + request.userInfo.username",
             "reason": "Forbidden"},
            {"expression": "'system:serviceaccounts:kube-system' in request.userInfo.groups"},
            {"expression": "has(request.userInfo.extra) && request.userInfo.extra['authentication.kubernetes.io/node-name'] == [object.metadata.labels.node]",
             "message": "wrong node"},
        ]}),
        &["Deny"],
    )
    .await;
    let mut on_a = widget("w", 1);
    on_a.metadata.labels = Some([("node".to_owned(), "node-a".to_owned())].into());
    let writer_a = server
        .client_as(&UserInfo::service_account_on_node(
            "kube-system",
            "writer",
            "node-a",
        ))
        .unwrap();
    widgets(&writer_a, "default")
        .create(&PostParams::default(), &on_a)
        .await
        .unwrap();
    let writer_b = server
        .client_as(&UserInfo::service_account_on_node(
            "kube-system",
            "writer",
            "node-b",
        ))
        .unwrap();
    on_a.metadata.name = Some("w2".into());
    let s = status(
        widgets(&writer_b, "default")
            .create(&PostParams::default(), &on_a)
            .await,
    );
    assert!(
        s.message.ends_with("denied request: wrong node"),
        "{}",
        s.message
    );
    let s = status(
        widgets(&server.client().unwrap(), "default")
            .create(&PostParams::default(), &on_a)
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert!(
        s.message.ends_with("not the writer: system:admin"),
        "{}",
        s.message
    );
    let log = server.request_log().recent();
    assert!(
        log.iter()
            .any(|r| r.user == "system:serviceaccount:kube-system:writer" && r.code == 201)
    );
}

#[tokio::test]
async fn old_object_and_operations_decide_updates_and_deletes() {
    let server = start().await;
    policy(
        &server,
        "no-shrink",
        json!({
            "matchConstraints": {"resourceRules": [{"apiGroups": ["example.com"], "apiVersions": ["*"],
                "operations": ["UPDATE", "DELETE"], "resources": ["widgets"]}]},
            "validations": [
                {"expression": "request.operation != 'UPDATE' || object.spec.size >= oldObject.spec.size",
                 "message": "widgets do not shrink"},
                {"expression": "request.operation != 'DELETE' || (object == null && oldObject.metadata.name != 'keep')",
                 "message": "keep stays"},
            ]}),
        &["Deny"],
    )
    .await;
    let api = widgets(&server.client().unwrap(), "default");
    for name in ["keep", "other"] {
        api.create(&PostParams::default(), &widget(name, 3))
            .await
            .unwrap();
    }
    let grow = Patch::Merge(json!({"spec": {"size": 4}}));
    api.patch("keep", &PatchParams::default(), &grow)
        .await
        .unwrap();
    let shrink = Patch::Merge(json!({"spec": {"size": 2}}));
    let s = status(api.patch("keep", &PatchParams::default(), &shrink).await);
    assert!(
        s.message.ends_with("widgets do not shrink"),
        "{}",
        s.message
    );
    // The status subresource is another resource (widgets/status): not matched.
    api.patch_status(
        "keep",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
    )
    .await
    .unwrap();
    let s = status(api.delete("keep", &DeleteParams::default()).await);
    assert!(s.message.ends_with("keep stays"), "{}", s.message);
    api.delete("other", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn match_conditions_variables_params_and_failure_policy() {
    let server = start().await;
    policy(
        &server,
        "limits",
        json!({
            "matchConditions": [{"name": "labelled", "expression": "has(object.metadata.labels) && 'limited' in object.metadata.labels"}],
            "variables": [{"name": "limit", "expression": "int(object.metadata.labels['limited'])"}],
            "validations": [
                {"expression": "params == null"},
                {"expression": "object.spec.size <= variables.limit", "messageExpression": "'limit is ' + string(variables.limit)"},
            ]}),
        &["Deny"],
    )
    .await;
    let api = widgets(&server.client().unwrap(), "default");
    api.create(&PostParams::default(), &widget("unlabelled", 50))
        .await
        .unwrap();
    let mut limited = widget("limited", 50);
    limited.metadata.labels = Some([("limited".to_owned(), "10".to_owned())].into());
    let s = status(api.create(&PostParams::default(), &limited).await);
    assert!(
        s.message.ends_with("denied request: limit is 10"),
        "{}",
        s.message
    );

    // A variable that fails makes the expressions using it fail: failurePolicy decides.
    limited.metadata.labels = Some([("limited".to_owned(), "ten".to_owned())].into());
    let s = status(api.create(&PostParams::default(), &limited).await);
    assert!(
        s.message
            .contains("expression 'object.spec.size <= variables.limit' resulted in error"),
        "{}",
        s.message
    );
    let policies = Api::<ValidatingAdmissionPolicy>::all(server.client().unwrap());
    policies
        .patch(
            "limits",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"failurePolicy": "Ignore"}})),
        )
        .await
        .unwrap();
    api.create(&PostParams::default(), &limited).await.unwrap();

    // Parameter resources are not supported: said so, by the failure policy.
    policies
        .patch(
            "limits",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"failurePolicy": "Fail", "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}})),
        )
        .await
        .unwrap();
    limited.metadata.name = Some("with-params".into());
    let s = status(api.create(&PostParams::default(), &limited).await);
    assert!(
        s.message
            .ends_with("policies with paramKind are not supported by egress-apiserver"),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn binding_match_resources_narrow_the_policy_by_namespace() {
    let server = start().await;
    let client = server.client().unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "prod", "labels": {"env": "prod"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    policy(
        &server,
        "tiny",
        json!({"validations": [{"expression": "object.spec.size < 2"}]}),
        &["Deny"],
    )
    .await;
    binding(
        &server,
        "tiny",
        json!({"policyName": "tiny", "validationActions": ["Deny"],
               "matchResources": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}),
    )
    .await;
    widgets(&client, "default")
        .create(&PostParams::default(), &widget("free", 5))
        .await
        .unwrap();
    let s = status(
        widgets(&client, "prod")
            .create(&PostParams::default(), &widget("bound", 5))
            .await,
    );
    assert!(
        s.message
            .ends_with("denied request: failed expression: object.spec.size < 2"),
        "{}",
        s.message
    );
    // A binding to a policy that does not exist is ignored.
    binding(
        &server,
        "ghost",
        json!({"policyName": "ghost", "validationActions": ["Deny"]}),
    )
    .await;
    widgets(&client, "default")
        .create(&PostParams::default(), &widget("still-free", 5))
        .await
        .unwrap();
}

#[tokio::test]
async fn policies_that_do_not_compile_are_refused_with_the_field() {
    let server = start().await;
    let p: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": "broken"},
        "spec": {"matchConstraints": {"resourceRules": []},
                 "validations": [{"expression": "object.spec.("}]}}))
    .unwrap();
    let s = status(
        Api::<ValidatingAdmissionPolicy>::all(server.client().unwrap())
            .create(&PostParams::default(), &p)
            .await,
    );
    assert_eq!(s.code, 422);
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.validations[0].expression");
    assert!(
        causes[0].message.contains("compilation failed"),
        "{}",
        causes[0].message
    );
}

#[tokio::test]
async fn kubectl_as_impersonates_and_shows_the_denial() {
    let server = start().await;
    policy(
        &server,
        "writers",
        json!({"validations": [{
            "expression": "request.userInfo.username == 'system:serviceaccount:kube-system:writer' && 'ops' in request.userInfo.groups",
            "messageExpression": "request.userInfo.username + ' may not write widgets'",
            "reason": "Forbidden",
        }]}),
        &["Deny"],
    )
    .await;
    let dir = TempDir::new();
    let manifest = dir.path().join("w.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {size: 1}\n",
    )
    .unwrap();
    let manifest = manifest.to_str().unwrap();
    let k = Kubectl::new(&server);
    let out = k.run(&["create", "-f", manifest]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("denied request: system:admin may not write widgets"),
        "{}",
        out.stderr
    );
    k.ok(&[
        "create",
        "-f",
        manifest,
        "--as=system:serviceaccount:kube-system:writer",
        "--as-group=ops",
    ])
    .await;
}
