//! The chart rendered offline with the pinned helm, for the defaults and for non-default
//! values: `helm lint --strict` passes, `kubernetes-validate --strict` accepts every rendered
//! object, the flags the templates pass are accepted by each binary, and the properties users
//! rely on hold (gateway-node placement, privileges, drain, Secret access, auth modes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use base64::Engine;
use clap::Parser;
use egress_install_tests::helm::{self, HelmError, NAMESPACE};
use egress_install_tests::manifests::{args, container, find, kind, name, pod_spec};
use egress_install_tests::rbac::{Access, grants_for};
use egress_install_tests::{bins, coverage, workspace_root};
use serde_json::Value;

const SP: &[&str] = &[
    "azureConfig.authMode=servicePrincipal",
    "azureConfig.tenantId=00000000-0000-0000-0000-000000000001",
    "azureConfig.aadClientId=11111111-0000-0000-0000-000000000000",
    "azureConfig.aadClientSecret=s3cret",
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.labels.release=prom",
    "gatewayDaemon.wireguardBackend=userspace",
    "gatewayDaemon.lbProbeDrainDelaySeconds=30",
    "gatewayDaemon.metricsPort=9080",
    "gatewayDaemon.healthPort=9080",
    "gatewayLbProbePort=9082",
    "operator.extraArgs={--leader-election-namespace=kube-egress-gateway-system}",
    "image.repository=myregistry.azurecr.io/egress/",
    "image.tag=1.2.3",
    "imagePullSecrets[0].name=pull",
];
const WI: &[&str] = &[
    "azureConfig.authMode=workloadIdentity",
    "azureConfig.aadClientId=22222222-0000-0000-0000-000000000000",
    "workloadIdentity.enabled=true",
    "operator.replicas=2",
    "operator.image.tag=dev",
    "fullnameOverride=keg",
];
const EXISTING: &[&str] = &[
    "azureConfig.existingSecret=my-azure-json",
    "azureConfig.secretKey=azure-cloud-config.json",
    "cniManager.enabled=false",
    "metrics.service=false",
];

fn render(sets: &[&str]) -> Vec<Value> {
    helm::template_with_required(sets).unwrap()
}

fn all_sets() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("defaults", vec![]),
        (
            "service principal, ServiceMonitor, userspace, ports",
            SP.to_vec(),
        ),
        ("workload identity, HA, overrides", WI.to_vec()),
        ("existing Secret, no CNI manager", EXISTING.to_vec()),
    ]
}

#[test]
fn default_values_fail_naming_the_missing_azure_settings() {
    match helm::template(&[]) {
        Err(HelmError::Failed { stderr, .. }) => assert!(
            stderr.contains("azureConfig.subscriptionId is required"),
            "{stderr}"
        ),
        other => panic!("expected a render failure, got {other:?}"),
    }
    match helm::template_with_required(&["azureConfig.authMode=servicePrincipal"]) {
        Err(HelmError::Failed { stderr, .. }) => {
            assert!(
                stderr.contains("azureConfig.tenantId is required"),
                "{stderr}"
            )
        }
        other => panic!("expected a render failure, got {other:?}"),
    }
    match helm::template_with_required(&["gatewayDaemon.wireguardBackend=boringtun"]) {
        Err(HelmError::Failed { stderr, .. }) => {
            // values.schema.json refuses it before the template's own check runs.
            assert!(
                stderr.contains("gatewayDaemon.wireguardBackend must be one of the following"),
                "{stderr}"
            )
        }
        other => panic!("expected a render failure, got {other:?}"),
    }
}

#[test]
fn chart_lints_and_every_rendered_object_validates() {
    let validate = workspace_root().join(".tools/venv/bin/kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    for (label, sets) in all_sets() {
        let all: Vec<&str> = helm::REQUIRED.iter().chain(sets.iter()).copied().collect();
        let report = helm::lint(&all).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(report.contains("0 chart(s) failed"), "{label}: {report}");

        let text = helm::template_text(&all).unwrap();
        let objs = egress_install_tests::manifests::parse(&text).unwrap();
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(&validate)
            .args(["--strict", "-k", helm::KUBE_VERSION])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("failed to run {}: {e} (make deps)", validate.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: {stdout}{stderr}");
        for o in &objs {
            if kind(o) == "ServiceMonitor" {
                // No schema offline: check what prometheus-operator needs to find the Service.
                let svc = objs
                    .iter()
                    .find(|s| {
                        let want = o["spec"]["selector"]["matchLabels"].as_object().unwrap();
                        kind(s) == "Service"
                            && want.iter().all(|(k, v)| s["metadata"]["labels"][k] == *v)
                            && want.iter().all(|(k, v)| s["spec"]["selector"][k] == *v)
                    })
                    .unwrap_or_else(|| {
                        panic!("{label}: no Service for ServiceMonitor {}", name(o))
                    });
                assert_eq!(
                    svc["spec"]["ports"][0]["name"],
                    o["spec"]["endpoints"][0]["port"]
                );
                continue;
            }
            let needle = format!("passed for resource {}/{}", kind(o).to_lowercase(), name(o));
            assert!(
                stdout.contains(&needle) || stderr.contains(&needle),
                "{label}: not validated: {needle}\n{stdout}{stderr}"
            );
        }
    }
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let root = workspace_root();
    let mut names: Vec<_> = std::fs::read_dir(root.join("config/crd"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut chart: Vec<_> = std::fs::read_dir(root.join("charts/kube-egress-gateway/crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    chart.sort();
    assert_eq!(names, chart, "run `make generate`");
    for n in names {
        assert_eq!(
            std::fs::read(root.join("config/crd").join(&n)).unwrap(),
            std::fs::read(root.join("charts/kube-egress-gateway/crds").join(&n)).unwrap(),
            "{n:?} differs: run `make generate`"
        );
    }
}

#[test]
fn gateway_daemon_runs_only_on_gateway_nodes_with_the_privileges_it_needs() {
    for (label, sets) in all_sets() {
        let objs = render(&sets);
        let fullname = if label.starts_with("workload") {
            "keg"
        } else {
            "kube-egress-gateway"
        };
        let ds = find(&objs, "DaemonSet", &format!("{fullname}-gateway-daemon")).unwrap();
        let spec = pod_spec(ds);
        assert_eq!(
            spec["nodeSelector"]["kubeegressgateway.azure.com/mode"],
            "true"
        );
        assert!(spec["tolerations"].as_array().unwrap().iter().any(|t| {
            t["key"] == "kubeegressgateway.azure.com/mode"
                && t["value"] == "true"
                && t["effect"] == "NoSchedule"
        }));
        assert_eq!(spec["hostNetwork"], true);
        let daemon = container(spec, "daemon").unwrap();
        let a = args(daemon);
        // Every rendered flag is one the binary accepts (MY_NODE_NAME comes from the env).
        let mut argv = vec![
            "egress-gateway-daemon".to_owned(),
            "--node-name=n".to_owned(),
        ];
        argv.extend(a.iter().cloned());
        let parsed = egress_gateway_daemon::cli::Args::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            grace >= parsed.lb_probe_drain_delay_seconds + 10,
            "{label}: grace {grace}s does not cover the {}s drain",
            parsed.lb_probe_drain_delay_seconds
        );
        let sc = &daemon["securityContext"];
        if parsed.wireguard_backend == egress_gateway_daemon::cli::Backend::Userspace {
            assert_eq!(
                sc["privileged"], true,
                "{label}: wireguard-go needs /dev/net/tun"
            );
        } else {
            assert!(sc["privileged"].is_null(), "{label}");
            assert_eq!(
                sc["capabilities"]["add"],
                serde_json::json!(["NET_ADMIN", "SYS_ADMIN"])
            );
            assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
            assert_eq!(sc["readOnlyRootFilesystem"], true);
        }
        let init = container(spec, "gateway-netns").unwrap();
        assert_eq!(init["volumeMounts"][0]["mountPropagation"], "Bidirectional");
        assert_eq!(
            daemon["volumeMounts"][0]["mountPropagation"],
            "HostToContainer"
        );
        // The load balancer's probe is answered by the lb-probe container, on the port the
        // operator writes into the Azure probe.
        let keeper = container(spec, "lb-probe").unwrap();
        let mut argv = vec!["egress-gateway-daemon lb-probe".to_owned()];
        argv.extend(args(keeper).into_iter().skip(1));
        let keeper_args = egress_gateway_daemon::cli::LbProbeArgs::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(args(keeper)[0], "lb-probe", "{label}");
        assert_eq!(
            parsed.gateway_lb_probe_port, 0,
            "{label}: the daemon does not bind it"
        );
        assert_eq!(
            keeper_args.state_file, parsed.lb_probe_state_file,
            "{label}"
        );
        // It recognises Azure's probes, whose answers the CNI managers wait for on a drain.
        assert_eq!(
            keeper_args.lb_prober_ips,
            vec![egress_api::lb_told::AZURE_PROBE_SOURCE],
            "{label}"
        );
        let operator = pod_spec(objs.iter().find(|o| kind(o) == "Deployment").unwrap());
        let operator_port = args(container(operator, "operator").unwrap())
            .iter()
            .find_map(|a| a.strip_prefix("--gateway-lb-probe-port="))
            .map(|p| p.parse::<u16>().unwrap())
            .unwrap();
        assert_eq!(keeper_args.port, operator_port, "{label}");
    }
}

#[test]
fn operator_flags_parse_and_match_the_mounted_cloud_config() {
    for (label, sets) in all_sets() {
        let objs = render(&sets);
        let dep = objs.iter().find(|o| kind(o) == "Deployment").unwrap();
        let spec = pod_spec(dep);
        let c = container(spec, "operator").unwrap();
        let mut argv = vec!["egress-operator".to_owned()];
        argv.extend(args(c));
        let parsed = egress_operator::cli::Args::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(parsed.leader_elect, "{label}");
        let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
        let secret = &spec["volumes"][0]["secret"]["secretName"];
        assert!(parsed.cloud_config.starts_with(mount), "{label}");
        let key = parsed
            .cloud_config
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if label.starts_with("existing") {
            assert_eq!(secret, "my-azure-json");
            assert_eq!(key, "azure-cloud-config.json");
            assert!(
                !objs.iter().any(|o| kind(o) == "Secret"),
                "{label}: no Secret rendered"
            );
        } else {
            let s = find(&objs, "Secret", secret.as_str().unwrap()).unwrap();
            assert!(s["data"][&key].is_string(), "{label}: Secret lacks {key}");
        }
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "health");
        let health = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "health")
            .unwrap();
        assert_eq!(
            health["containerPort"].as_u64().unwrap(),
            u64::from(parsed.health_addr.port())
        );
    }
}

fn cloud_config(objs: &[Value]) -> String {
    let s = objs.iter().find(|o| kind(o) == "Secret").unwrap();
    let b64 = s["data"]["azure.json"].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn rendered_cloud_config_is_accepted_by_the_operator_for_each_auth_mode() {
    let no_env = |_: &str| None;
    let mi = egress_azure::CloudConfig::from_text(&cloud_config(&render(&[])), &no_env).unwrap();
    assert!(
        format!("{:?}", mi.auth).contains("ManagedIdentity"),
        "{:?}",
        mi.auth
    );
    let sp = egress_azure::CloudConfig::from_text(&cloud_config(&render(SP)), &no_env).unwrap();
    assert!(
        format!("{:?}", sp.auth).contains("ClientSecret"),
        "{:?}",
        sp.auth
    );
    let objs = render(WI);
    let env = |k: &str| match k {
        "AZURE_TENANT_ID" => Some("00000000-0000-0000-0000-000000000001".to_owned()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some("/var/run/secrets/azure/tokens/token".to_owned()),
        _ => None,
    };
    let wi = egress_azure::CloudConfig::from_text(&cloud_config(&objs), &env).unwrap();
    assert!(
        format!("{:?}", wi.auth).contains("WorkloadIdentity"),
        "{:?}",
        wi.auth
    );
    let sa = find(&objs, "ServiceAccount", "keg-operator").unwrap();
    assert_eq!(
        sa["metadata"]["annotations"]["azure.workload.identity/client-id"],
        "22222222-0000-0000-0000-000000000000"
    );
    let dep = find(&objs, "Deployment", "keg-operator").unwrap();
    assert_eq!(
        dep["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(dep["spec"]["replicas"], 2);
}

#[test]
fn cni_manager_runs_everywhere_without_secrets_and_keeps_the_chain_on_upgrades() {
    let help = bins::help("egress-cni-manager", "egress-cni-manager").unwrap();
    let known: Vec<String> = coverage::help_flags(&help)
        .into_iter()
        .map(|f| f.long)
        .collect();
    for (label, sets, hook) in [
        ("defaults", vec![], true),
        (
            "uninstall hook off",
            vec!["cniManager.uninstallHook.enabled=false"],
            false,
        ),
    ] {
        let objs = render(&sets);
        let ds = find(&objs, "DaemonSet", "kube-egress-gateway-cni-manager").unwrap();
        let spec = pod_spec(ds);
        assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
        assert_eq!(
            spec["tolerations"][0]["operator"], "Exists",
            "runs on tainted nodes too"
        );
        let c = container(spec, "manager").unwrap();
        for a in args(c) {
            let flag = a.split('=').next().unwrap().to_owned();
            assert!(
                known.contains(&flag),
                "{label}: {flag} is not a flag of egress-cni-manager"
            );
        }
        let socket = args(c)
            .into_iter()
            .find(|a| a.starts_with("--socket-path="))
            .unwrap();
        let dir = socket
            .trim_start_matches("--socket-path=")
            .trim_end_matches("/cni.sock");
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "socket-dir")
            .unwrap();
        assert_eq!(
            mount["mountPath"], dir,
            "the plugin on the host must find the socket"
        );
        let vol = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "socket-dir")
            .unwrap();
        assert_eq!(vol["hostPath"]["path"], dir);
        assert_eq!(
            c["securityContext"]["capabilities"]["drop"],
            serde_json::json!(["ALL"])
        );
        assert!(container(spec, "install-plugin").is_some());
        let env = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "UNINSTALL_ON_EXIT")
            .unwrap();
        // Stops keep the conflist; only the pre-delete hook flips this.
        assert_eq!(env["value"], "false", "{label}");
        let job = objs.iter().find(|o| kind(o) == "Job");
        assert_eq!(job.is_some(), hook, "{label}: the pre-delete hook");
        if let Some(job) = job {
            assert_eq!(job["metadata"]["annotations"]["helm.sh/hook"], "pre-delete");
        }
    }
}

#[test]
fn secrets_are_readable_only_where_needed() {
    let objs = render(&[]);
    let read = |ns: Option<&str>, verb: &str| Access {
        verb: verb.into(),
        group: String::new(),
        resource: "secrets".into(),
        namespace: ns.map(str::to_owned),
        name: None,
    };
    let cni = grants_for(&objs, "kube-egress-gateway-cni-manager", NAMESPACE);
    for ns in [None, Some(NAMESPACE), Some("default")] {
        for verb in ["get", "list", "watch"] {
            assert!(
                !cni.iter().any(|g| g.allows(&read(ns, verb))),
                "CNI manager may {verb} Secrets"
            );
        }
    }
    let daemon = grants_for(&objs, "kube-egress-gateway-gateway-daemon", NAMESPACE);
    assert!(
        daemon
            .iter()
            .any(|g| g.allows(&read(Some(NAMESPACE), "watch")))
    );
    for (ns, verb) in [
        (Some("default"), "list"),
        (None, "list"),
        (Some(NAMESPACE), "create"),
        (Some(NAMESPACE), "patch"),
    ] {
        assert!(
            !daemon.iter().any(|g| g.allows(&read(ns, verb))),
            "daemon may {verb} Secrets in {ns:?}"
        );
    }
    let operator = grants_for(&objs, "kube-egress-gateway-operator", NAMESPACE);
    assert!(
        !operator
            .iter()
            .any(|g| g.allows(&read(Some("default"), "get")))
    );
}
