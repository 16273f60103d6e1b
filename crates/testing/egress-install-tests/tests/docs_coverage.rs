//! docs/configuration.md covers every knob: each chart value (walked from values.yaml, each
//! also commented there), each long flag and environment variable of the operator, gateway
//! daemon, CNI manager and egressctl (from their clap definitions / `--help`), each field of
//! the CNI plugin's conflist entry (as the CNI manager writes it), and each
//! StaticGatewayConfiguration spec field (from the generated CRD). Adding a knob without
//! documenting it fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use clap::CommandFactory;
use egress_install_tests::coverage::{help_flags, mentions, uncommented_values, value_paths};
use egress_install_tests::{bins, chart_dir, workspace_root};
use serde_json::Value;

fn doc() -> String {
    std::fs::read_to_string(workspace_root().join("docs/configuration.md"))
        .expect("docs/configuration.md")
}

#[test]
fn every_chart_value_is_commented_and_documented() {
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap();
    let values: Value = serde_saphyr::from_str(&text).unwrap();
    let paths = value_paths(&values);
    assert!(paths.len() > 50, "walked only {} values", paths.len());
    let uncommented = uncommented_values(&text, &paths);
    assert!(
        uncommented.is_empty(),
        "values.yaml keys without a comment: {uncommented:?}"
    );
    let doc = doc();
    let missing: Vec<_> = paths
        .iter()
        .filter(|p| !doc.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "chart values missing from docs/configuration.md: {missing:?}"
    );
}

fn check_help(binary: &str, help: &str, doc: &str, missing: &mut Vec<String>) {
    let flags = help_flags(help);
    assert!(!flags.is_empty(), "no flags parsed from {binary} --help");
    for f in flags {
        if !mentions(doc, &f.long) {
            missing.push(format!("{binary} {}", f.long));
        }
        if let Some(env) = f.env.filter(|e| !mentions(doc, e)) {
            missing.push(format!("{binary} env {env}"));
        }
    }
}

#[test]
fn every_flag_and_environment_variable_is_documented() {
    let doc = doc();
    let mut missing = Vec::new();
    let operator = egress_operator::cli::Args::command()
        .render_long_help()
        .to_string();
    check_help("egress-operator", &operator, &doc, &mut missing);
    let daemon = egress_gateway_daemon::cli::Args::command()
        .render_long_help()
        .to_string();
    check_help("egress-gateway-daemon", &daemon, &doc, &mut missing);
    let manager = bins::help("egress-cni-manager", "egress-cni-manager").unwrap();
    check_help("egress-cni-manager", &manager, &doc, &mut missing);
    let ctl = bins::help("egressctl", "egressctl").unwrap();
    let sub_help = |args: &[&str]| {
        let exe = workspace_root().join("target/debug/egressctl");
        let out = std::process::Command::new(exe)
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for sub in [&["validate"][..], &["status"], &["explain", "pod"]] {
        let help = sub_help(sub);
        assert!(help.contains("Usage:"), "{sub:?}: {help}");
        check_help(
            &format!("egressctl {}", sub.join(" ")),
            &help,
            &doc,
            &mut missing,
        );
    }
    for sub in ["validate", "status", "explain", "completion"] {
        assert!(ctl.contains(sub), "{ctl}");
        if !mentions(&doc, &format!("egressctl {sub}")) {
            missing.push(format!("egressctl {sub}"));
        }
    }
    // Read by the binaries outside clap.
    for env in ["MY_POD_NAME", "RUST_LOG"] {
        if !mentions(&doc, env) {
            missing.push(format!("env {env}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn every_static_gateway_configuration_field_is_documented() {
    let text = std::fs::read_to_string(
        workspace_root().join("config/crd/staticgatewayconfigurations.yaml"),
    )
    .unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut fields = Vec::new();
    for (k, v) in spec["properties"].as_object().unwrap() {
        fields.push(format!("spec.{k}"));
        for sub in v["properties"].as_object().into_iter().flatten() {
            fields.push(format!("spec.{k}.{}", sub.0));
        }
    }
    let doc = doc();
    let missing: Vec<_> = fields.iter().filter(|f| !mentions(&doc, f)).collect();
    assert!(
        missing.is_empty(),
        "SGC fields missing from docs/configuration.md: {missing:?}"
    );
}

#[tokio::test]
async fn every_cni_plugin_config_field_is_documented() {
    let api = egress_apiserver::ApiServer::start(
        egress_apiserver::ServerConfig::default().with_crds(workspace_root().join("config/crd")),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("net.d");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("10-ptp.conflist"),
        r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"ptp"}]}"#,
    )
    .unwrap();
    let manager = egress_cni_manager::start(
        egress_cni_manager::ManagerConfig {
            node_name: "n".into(),
            socket_path: dir.path().join("run/cni.sock"),
            cni_conf_dir: conf.clone(),
            exception_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
            handshake_timeout: Duration::from_secs(10),
            conflist_poll_interval: Duration::from_millis(50),
            http_addr: None,
            uninstall_on_exit: false,
            allowed_uids: vec![0],
            max_connections: usize::from(egress_cni_manager::DEFAULT_MAX_CONNECTIONS),
            attach_running_pods: true,
        },
        api.client().unwrap(),
    )
    .await
    .unwrap();
    let path = conf.join(egress_api::constants::CNI_CONFLIST_FILE);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "conflist not written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let list: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manager.shutdown().await;
    let ours = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == egress_api::constants::CNI_TYPE)
        .unwrap();
    let doc = doc();
    let missing: Vec<_> = ours
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "conflist fields missing from docs/configuration.md: {missing:?}"
    );
}
