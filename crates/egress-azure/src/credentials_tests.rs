//! Each auth mode end to end over an in-process transport (no sockets, production https URLs):
//! the azure_identity credential built from the config fetches a token from the Entra / IMDS
//! endpoint it should, and azure_core's bearer policy stamps it on the ARM request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use azure_core::http::headers::Headers;
use azure_core::http::{AsyncRawResponse, HttpClient, Request, StatusCode};
use std::sync::{Arc, Mutex};

use crate::{ArmClient, CloudConfig, LoadBalancers};

/// `(method, url, authorization header, body)` of one request.
type Seen = (String, String, Option<String>, String);

/// Answers token endpoints and ARM like the real services would for one GET, and records
/// `(method, url, authorization, body)` of every request.
#[derive(Debug, Default)]
struct FakeAzure {
    seen: Mutex<Vec<Seen>>,
}

#[async_trait]
impl HttpClient for FakeAzure {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url().clone();
        let auth = request
            .headers()
            .get_optional_str(&azure_core::http::headers::AUTHORIZATION)
            .map(str::to_string);
        let body = String::from_utf8_lossy(&bytes_of(request)).into_owned();
        self.seen
            .lock()
            .unwrap()
            .push((request.method().to_string(), url.to_string(), auth, body));
        let json = match url.host_str() {
            Some("login.microsoftonline.com") => {
                r#"{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"entra-token"}"#.to_string()
            }
            Some("169.254.169.254") => format!(
                r#"{{"access_token":"msi-token","expires_on":"{}","token_type":"Bearer","resource":"https://management.azure.com"}}"#,
                azure_core::time::OffsetDateTime::now_utc().unix_timestamp() + 3600
            ),
            _ => r#"{"name":"lb"}"#.to_string(),
        };
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Ok,
            headers,
            json.into_bytes(),
        ))
    }
}

fn bytes_of(request: &Request) -> Vec<u8> {
    match request.body() {
        azure_core::http::Body::Bytes(b) => b.to_vec(),
        _ => Vec::new(),
    }
}

const BASE: &str = "cloud: AzurePublicCloud\ntenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47\n\
    subscriptionId: s\nresourceGroup: rg\nlocation: eastus\nvnetName: v\nsubnetName: sn\n\
    loadBalancerName: lb\n";

async fn get_lb(extra: &str) -> Vec<Seen> {
    let config = CloudConfig::from_text(&format!("{BASE}{extra}"), &|_| None).unwrap();
    let fake = Arc::new(FakeAzure::default());
    let client = ArmClient::builder_from_config(&config)
        .transport(fake.clone())
        .build()
        .unwrap();
    let lb = client
        .get_load_balancer(&config.load_balancer_id())
        .await
        .unwrap();
    assert_eq!(lb.name.as_deref(), Some("lb"));
    fake.seen.lock().unwrap().clone()
}

#[tokio::test]
async fn client_secret_token_is_used_for_arm() {
    let seen = get_lb("aadClientId: app\naadClientSecret: s3cret\n").await;
    let (method, url, _, body) = &seen[0];
    assert_eq!(method, "POST");
    assert_eq!(
        url,
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
    );
    assert!(body.contains("client_secret=s3cret"));
    assert!(
        body.contains("scope=https%3A%2F%2Fmanagement.azure.com%2F.default"),
        "{body}"
    );
    let (_, arm_url, auth, _) = seen.last().unwrap();
    assert!(arm_url.starts_with("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb?api-version=2024-05-01"));
    assert_eq!(auth.as_deref(), Some("Bearer entra-token"));
}

#[tokio::test]
async fn managed_identity_token_comes_from_imds() {
    let seen =
        get_lb("useManagedIdentityExtension: true\nuserAssignedIdentityID: uami-client\n").await;
    let (method, url, _, _) = &seen[0];
    assert_eq!(method, "GET");
    assert!(
        url.starts_with("http://169.254.169.254/metadata/identity/oauth2/token"),
        "{url}"
    );
    assert!(url.contains("client_id=uami-client"), "{url}");
    assert_eq!(seen.last().unwrap().2.as_deref(), Some("Bearer msi-token"));
}

#[tokio::test]
async fn workload_identity_sends_the_federated_token() {
    let dir = std::env::temp_dir().join(format!("egress-azure-wi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "projected-sa-token").unwrap();
    let seen = get_lb(&format!(
        "useFederatedWorkloadIdentityExtension: true\naadClientId: wi-client\naadFederatedTokenFile: {}\n",
        file.display()
    ))
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    let (_, url, _, body) = &seen[0];
    assert!(
        url.starts_with("https://login.microsoftonline.com/"),
        "{url}"
    );
    assert!(
        body.contains("client_assertion=projected-sa-token"),
        "{body}"
    );
    assert!(body.contains("client_id=wi-client"), "{body}");
    assert_eq!(
        seen.last().unwrap().2.as_deref(),
        Some("Bearer entra-token")
    );
}
