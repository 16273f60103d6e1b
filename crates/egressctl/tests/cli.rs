//! `egressctl validate` as a user runs it: inputs (file, directory, stdin, several -f), output
//! lines `FILE:DOC: Kind/name: field.path: message`, and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn egressctl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_egressctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const BAD: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: egressgateway.kubernetes.azure.com/v1alpha1
kind: StaticGatewayConfiguration
metadata: {name: broken, namespace: default}
spec:
  gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: vmss, publicIpPrefixSize: 33}
  excludeCidrs: [10.0.0.0/8, bogus]
";

#[test]
fn examples_directory_is_valid() {
    let out = egressctl(&["validate", "-f", "../../examples"], None);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "",
        "the examples should produce no findings at all"
    );
    assert!(
        text(&out.stderr).contains("0 error(s), 0 warning(s)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn each_problem_is_one_line_naming_file_document_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).unwrap();
    let f = file.to_str().unwrap();
    let out = egressctl(&["validate", "-f", f], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "{f}:2: StaticGatewayConfiguration/broken: spec.gatewayVmssProfile.publicIpPrefixSize: Invalid value: 33: spec.gatewayVmssProfile.publicIpPrefixSize in body should be less than or equal to 31"
            ),
            format!(
                "{f}:2: StaticGatewayConfiguration/broken: spec.excludeCidrs: warning: \"bogus\" is not an IPv4 or IPv6 CIDR such as 10.0.0.0/8; pods naming this gateway cannot start (the CNI manager refuses them) and the operator reports Ready=False/InvalidExcludeCidrs"
            ),
        ]
    );
    assert!(
        text(&out.stderr).contains(
            "2 document(s): 1 of ours checked, 1 other kind(s) ignored; 1 error(s), 1 warning(s)"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stdin_and_several_inputs_are_combined() {
    // The Deployment on stdin refers to gw-vmss, defined in the examples: no warning.
    let deployment = std::fs::read_to_string("../../examples/deployment-annotated.yaml").unwrap();
    let out = egressctl(
        &[
            "validate",
            "-f",
            "-",
            "-f",
            "../../examples/sgc-vmss-managed-prefix.yaml",
        ],
        Some(&deployment),
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    // Alone, it warns that the SGC is not among the inputs, but still passes.
    let out = egressctl(&["validate", "-f", "-"], Some(&deployment));
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        "-:1: Deployment/billing-exporter: spec.template.metadata.annotations[kubernetes.azure.com/static-gateway-configuration]: warning: StaticGatewayConfiguration \"gw-vmss\" is not among the validated manifests; it must exist in namespace \"default\" or these pods cannot start"
    );
}

#[test]
fn host_network_pods_cannot_use_a_gateway() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {kubernetes.azure.com/static-gateway-configuration: gw}\nspec:\n  hostNetwork: true\n  containers: []\n";
    let out = egressctl(&["validate", "-f", "-"], Some(pod));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("-:1: Pod/p: metadata.annotations[kubernetes.azure.com/static-gateway-configuration]: pods with hostNetwork: true"), "{}", text(&out.stdout));
}

#[test]
fn unreadable_inputs_and_broken_yaml_are_errors() {
    let out = egressctl(&["validate", "-f", "/nonexistent/x.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("failed to read /nonexistent/x.yaml"),
        "{}",
        text(&out.stderr)
    );
    let out = egressctl(
        &["validate", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: [unclosed\n---\nkind: Pod\n",
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    // The broken document is reported with its line in the input; the next one is still read.
    assert!(
        text(&out.stdout).starts_with("-:2: -: invalid YAML at line 6 column 7: unclosed bracket")
            && text(&out.stdout).contains("-:3: Pod/<unnamed>: apiVersion: Required value"),
        "{}",
        text(&out.stdout)
    );
    let out = egressctl(
        &["validate", "-f", "-"],
        Some("kind: StaticGatewayConfiguration\nmetadata: {name: x}\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("StaticGatewayConfiguration/x: apiVersion: Required value"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn wrong_version_unknown_kind_and_bad_names_are_errors() {
    let doc = |api: &str, kind: &str, name: &str| {
        format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {{gatewayNodepoolName: p}}\n"
        )
    };
    let out = egressctl(
        &["validate", "-f", "-"],
        Some(&doc(
            "egressgateway.kubernetes.azure.com/v1beta1",
            "StaticGatewayConfiguration",
            "x",
        )),
    );
    assert!(
        text(&out.stdout)
            .contains("apiVersion: egressgateway.kubernetes.azure.com/v1beta1 is not served"),
        "{}",
        text(&out.stdout)
    );
    let out = egressctl(
        &["validate", "-f", "-"],
        Some(&doc(
            "egressgateway.kubernetes.azure.com/v1alpha1",
            "StaticGateway",
            "x",
        )),
    );
    assert!(
        text(&out.stdout).contains(
            "kind: \"StaticGateway\" is not a kind of egressgateway.kubernetes.azure.com"
        ),
        "{}",
        text(&out.stdout)
    );
    let out = egressctl(
        &["validate", "-f", "-"],
        Some(&doc(
            "egressgateway.kubernetes.azure.com/v1alpha1",
            "StaticGatewayConfiguration",
            "Bad_Name",
        )),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn warnings_alone_do_not_fail() {
    let sgc = "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: StaticGatewayConfiguration\nmetadata: {name: w}\nspec:\n  gatewayNodepoolName: p\n  excludeCidrs: [10.1.2.3/8]\n";
    let out = egressctl(&["validate", "-f", "-"], Some(sgc));
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains(
            "spec.excludeCidrs[0]: warning: 10.1.2.3/8 has host bits set; it is used as 10.0.0.0/8"
        ),
        "{}",
        text(&out.stdout)
    );
    let out = egressctl(&["validate", "--quiet", "-f", "-"], Some(sgc));
    assert_eq!(text(&out.stdout), "");
    // --strict: warnings are problems too.
    let out = egressctl(&["validate", "--strict", "-f", "-"], Some(sgc));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

#[test]
fn manifests_the_original_accepts_pass_with_warnings_and_exit_0() {
    // The manifest: private mode with the size the original writes for "unset".
    let private = "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: StaticGatewayConfiguration\nmetadata: {name: p, namespace: d}\nspec:\n  gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw, publicIpPrefixSize: 0}\n  provisionPublicIps: false\n";
    let out = egressctl(&["validate", "--strict", "-f", "-"], Some(private));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
    // Public mode with a size Azure refuses: accepted (exit 0) with the warning the cluster gives.
    let public = private.replace("provisionPublicIps: false", "provisionPublicIps: true");
    let out = egressctl(&["validate", "-f", "-"], Some(&public));
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(
            "-:1: StaticGatewayConfiguration/p: spec.gatewayVmssProfile.publicIpPrefixSize: warning: unset, but with provisionPublicIps: true"
        ),
        "{}",
        text(&out.stdout)
    );
    let out = egressctl(&["validate", "--strict", "-f", "-"], Some(&public));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let out = egressctl(&["validate"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = egressctl(&["no-such-command"], None);
    assert_eq!(out.status.code(), Some(2));
}
