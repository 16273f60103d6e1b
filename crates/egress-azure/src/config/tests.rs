//! Cloud config parsing and validation: the original's samples, each auth mode, and every error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const BASE: &str = r#"
cloud: AzurePublicCloud
tenantId: t
subscriptionId: 00000000-0000-0000-0000-000000000000
resourceGroup: rg
location: westus2
vnetName: vnet
subnetName: gw
"#;

fn parse(extra: &str) -> Result<CloudConfig, ConfigError> {
    CloudConfig::from_text(&format!("{BASE}{extra}"), &no_env)
}

#[test]
fn original_msi_json_sample_parses_with_defaults() {
    // Shape of the original's docs/samples/sample_azure_config_msi.yaml, as JSON (AKS azure.json).
    let json = r#"{
        "cloud": "AzurePublicCloud", "tenantId": "t", "subscriptionId": "s",
        "resourceGroup": "rg", "location": "eastus", "vnetName": "v", "subnetName": "sn",
        "useManagedIdentityExtension": true, "userAssignedIdentityID": "cid",
        "aadClientId": "msi", "aadClientSecret": "msi",
        "gatewayLoadBalancerName": "my-ilb", "cloudProviderRateLimit": false
    }"#;
    let c = CloudConfig::from_text(json, &no_env).unwrap();
    assert_eq!(c.load_balancer_name, "my-ilb");
    assert_eq!(c.load_balancer_resource_group, "rg");
    assert_eq!(c.vnet_resource_group, "rg");
    assert!(matches!(
        c.auth,
        AuthMode::ManagedIdentity { user_assigned_id: Some(ref id) } if id == "cid"
    ));
    assert_eq!(
        c.endpoints.resource_manager.as_str(),
        "https://management.azure.com/"
    );
    assert_eq!(
        c.endpoints.token_scope,
        "https://management.azure.com/.default"
    );
    assert!(!c.endpoints.allow_insecure_http);
    assert_eq!(
        c.subnet_id().to_string(),
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/sn"
    );
}

#[test]
fn service_principal_secret_is_redacted_in_debug() {
    let c = parse("aadClientId: app\naadClientSecret: hunter2\n").unwrap();
    assert!(matches!(c.auth, AuthMode::ClientSecret { ref client_id, .. } if client_id == "app"));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn workload_identity_from_flag_and_from_webhook_env() {
    let c = parse(
        "useFederatedWorkloadIdentityExtension: true\naadClientId: wi\naadFederatedTokenFile: /t\n",
    )
    .unwrap();
    assert!(
        matches!(c.auth, AuthMode::WorkloadIdentity { ref token_file, .. } if token_file.as_os_str() == "/t")
    );

    let env = |k: &str| match k {
        "AZURE_FEDERATED_TOKEN_FILE" => Some("/var/run/token".to_string()),
        "AZURE_CLIENT_ID" => Some("env-client".to_string()),
        "AZURE_AUTHORITY_HOST" => Some("https://login.example/".to_string()),
        _ => None,
    };
    let c = CloudConfig::from_text(BASE, &env).unwrap();
    match c.auth {
        AuthMode::WorkloadIdentity {
            client_id,
            tenant_id,
            ..
        } => {
            assert_eq!(client_id, "env-client");
            assert_eq!(tenant_id, "t");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        c.endpoints.authority_host.as_str(),
        "https://login.example/"
    );
}

#[test]
fn workload_identity_without_token_file_names_the_field() {
    let err = parse("useFederatedWorkloadIdentityExtension: true\naadClientId: wi\n").unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Missing {
                field: "aadFederatedTokenFile",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_required_fields_are_named() {
    for field in [
        "cloud",
        "subscriptionId",
        "resourceGroup",
        "location",
        "vnetName",
        "subnetName",
    ] {
        let text: String = format!("{BASE}aadClientId: a\naadClientSecret: b\n")
            .lines()
            .filter(|l| !l.starts_with(&format!("{field}:")))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = CloudConfig::from_text(&text, &no_env).unwrap_err();
        match err {
            ConfigError::Missing { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: unexpected {other}"),
        }
        assert!(err_text(&text).contains(field));
    }
}

fn err_text(text: &str) -> String {
    CloudConfig::from_text(text, &no_env)
        .unwrap_err()
        .to_string()
}

#[test]
fn blank_values_count_as_missing() {
    let err = CloudConfig::from_text(
        &BASE.replace("location: westus2", "location: '  '"),
        &no_env,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Missing {
            field: "location",
            ..
        }
    ));
}

#[test]
fn contradictions_are_reported_with_both_fields() {
    let cases = [
        (
            "aadClientId: a\naadClientSecret: s\naadClientCertPath: /c.pfx\n",
            ("aadClientSecret", "aadClientCertPath"),
        ),
        (
            "aadClientId: a\naadClientSecret: s\nuserAssignedIdentityID: u\n",
            ("userAssignedIdentityID", "useManagedIdentityExtension"),
        ),
        (
            "useManagedIdentityExtension: true\nuseFederatedWorkloadIdentityExtension: true\n",
            (
                "useManagedIdentityExtension",
                "useFederatedWorkloadIdentityExtension",
            ),
        ),
        (
            "useFederatedWorkloadIdentityExtension: true\naadClientSecret: s\n",
            ("useFederatedWorkloadIdentityExtension", "aadClientSecret"),
        ),
    ];
    for (extra, (a, b)) in cases {
        match parse(extra).unwrap_err() {
            ConfigError::Contradictory { first, second, .. } => {
                assert_eq!((first, second), (a, b), "{extra}")
            }
            other => panic!("{extra}: unexpected {other}"),
        }
    }
}

#[test]
fn service_principal_without_secret_or_identity_is_explained() {
    let err = parse("aadClientId: a\n").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Missing {
            field: "aadClientSecret",
            ..
        }
    ));
    let err = parse("").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Missing {
            field: "aadClientId",
            ..
        }
    ));
}

#[cfg(not(feature = "client-certificate"))]
#[test]
fn certificate_without_feature_is_rejected() {
    let err = parse("aadClientId: a\naadClientCertPath: /c.pfx\n").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            field: "aadClientCertPath",
            ..
        }
    ));
}

#[test]
fn endpoint_overrides_and_http_rules() {
    let c = parse(
        "useManagedIdentityExtension: true\nresourceManagerEndpoint: http://127.0.0.1:8080\n",
    )
    .unwrap();
    assert_eq!(
        c.endpoints.resource_manager.as_str(),
        "http://127.0.0.1:8080/"
    );
    assert!(c.endpoints.allow_insecure_http);
    assert_eq!(c.endpoints.token_scope, "http://127.0.0.1:8080/.default");

    let err = parse(
        "useManagedIdentityExtension: true\nresourceManagerEndpoint: http://arm.example.com\n",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "resourceManagerEndpoint",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        parse("useManagedIdentityExtension: true\nresourceManagerEndpoint: http://emu:1\nallowInsecureHttp: true\n")
            .is_ok()
    );
    let err = parse(
        "useManagedIdentityExtension: true\nactiveDirectoryAuthorityHost: http://login.local\n",
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            field: "activeDirectoryAuthorityHost",
            ..
        }
    ));
    let err = parse("useManagedIdentityExtension: true\nresourceManagerEndpoint: not a url\n")
        .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            field: "resourceManagerEndpoint",
            ..
        }
    ));
}

#[test]
fn sovereign_and_stack_clouds() {
    let c = CloudConfig::from_text(
        &(BASE.replace("AzurePublicCloud", "azurechinacloud")
            + "useManagedIdentityExtension: true\n"),
        &no_env,
    )
    .unwrap();
    assert_eq!(c.cloud, AzureCloud::China);
    assert_eq!(
        c.endpoints.resource_manager.as_str(),
        "https://management.chinacloudapi.cn/"
    );
    assert_eq!(
        c.endpoints.authority_host.as_str(),
        "https://login.chinacloudapi.cn/"
    );

    let stack =
        BASE.replace("AzurePublicCloud", "AzureStackCloud") + "useManagedIdentityExtension: true\n";
    let err = CloudConfig::from_text(&stack, &no_env).unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Missing {
            field: "resourceManagerEndpoint",
            ..
        }
    ));
    let c = CloudConfig::from_text(
        &(stack
            + "resourceManagerEndpoint: https://management.local.azurestack.external\n\
               activeDirectoryAuthorityHost: https://login.local/\n\
               resourceManagerAudience: https://management.adfs.azurestack.local/abc\n"),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        c.endpoints.token_scope,
        "https://management.adfs.azurestack.local/abc/.default"
    );

    let err =
        CloudConfig::from_text(&BASE.replace("AzurePublicCloud", "Mars"), &no_env).unwrap_err();
    assert!(err.to_string().contains("unknown cloud \"Mars\""), "{err}");
}

#[test]
fn names_with_slashes_and_bad_syntax_are_rejected() {
    let err = CloudConfig::from_text(
        &(BASE.replace("vnetName: vnet", "vnetName: a/b") + "useManagedIdentityExtension: true\n"),
        &no_env,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            field: "vnetName",
            ..
        }
    ));
    let err = CloudConfig::from_text("cloud: [unclosed", &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    let err = CloudConfig::from_file("/nonexistent/azure.json").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/azure.json"));
}

#[cfg(feature = "client-certificate")]
#[test]
fn certificate_mode_with_feature() {
    let c =
        parse("aadClientId: a\naadClientCertPath: /c.pfx\naadClientCertPassword: pw\n").unwrap();
    assert!(
        matches!(c.auth, AuthMode::ClientCertificate { ref cert_path, password: Some(_), .. } if cert_path.as_os_str() == "/c.pfx")
    );
}
