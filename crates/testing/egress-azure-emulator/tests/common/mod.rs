//! Test helpers: an emulator plus a small ARM client that follows both LRO styles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use egress_azure_emulator::{Emulator, EmulatorConfig};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

pub const NET: &str = "2024-05-01";
pub const COMPUTE: &str = "2024-07-01";
/// The Network RP's scale-set NIC and public IP reads are pinned to this version.
pub const VMSS_NET: &str = "2018-10-01";
pub const RG: &str = "rg-egress";

/// A plain-http client that also works when reqwest's rustls feature is enabled by feature
/// unification in a workspace build (rustls then wants a process-wide crypto provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub struct Arm {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub base: String,
    pub sub: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn answer(r: Response) -> Answer {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        headers,
        body,
    }
}

impl Arm {
    pub async fn start() -> Self {
        Self::start_with(EmulatorConfig::default()).await
    }

    pub async fn start_with(cfg: EmulatorConfig) -> Self {
        let emu = Emulator::start(cfg).await.unwrap();
        let base = emu.arm_url();
        let sub = emu.subscription_id();
        Self {
            emu,
            http: http_client(),
            base,
            sub,
        }
    }

    /// Starts the emulator with an inline YAML seed.
    pub async fn start_seed(yaml: &str) -> Self {
        let seed =
            egress_azure_emulator::Seed::from_yaml(yaml, std::path::Path::new("inline")).unwrap();
        Self::start_with(EmulatorConfig {
            seed: Some(seed),
            ..Default::default()
        })
        .await
    }

    pub fn net(&self, kind: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{RG}/providers/Microsoft.Network/{kind}/{name}",
            self.sub
        )
    }

    pub fn compute(&self, rest: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{RG}/providers/Microsoft.Compute/{rest}",
            self.sub
        )
    }

    pub fn subnet_id(&self) -> String {
        format!(
            "{}/subnets/aks-subnet",
            self.net("virtualNetworks", "aks-vnet")
        )
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        api: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = if api.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}{sep}api-version={api}", self.base)
        };
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, api: &str) -> Answer {
        self.send(Method::GET, path, api, None, &[]).await
    }

    pub async fn put(&self, path: &str, api: &str, body: &Value) -> Answer {
        self.send(Method::PUT, path, api, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str, api: &str) -> Answer {
        self.send(Method::DELETE, path, api, None, &[]).await
    }

    pub async fn fetch(&self, url: &str) -> Answer {
        answer(self.http.get(url).send().await.unwrap()).await
    }

    /// Follows `Azure-AsyncOperation` until a terminal status; returns (status body, polls).
    pub async fn wait_async(&self, a: &Answer) -> (Value, u32) {
        let url = a
            .header("azure-asyncoperation")
            .expect("Azure-AsyncOperation header");
        for polls in 1..=50 {
            let s = self.fetch(&url).await;
            assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
            if s.body["status"] != "InProgress" {
                return (s.body, polls);
            }
        }
        panic!("LRO did not finish in 50 polls");
    }

    /// Follows `Location` until it stops answering 202; returns (final answer, polls).
    pub async fn wait_location(&self, a: &Answer) -> (Answer, u32) {
        let url = a.header("location").expect("Location header");
        for polls in 1..=50 {
            let s = self.fetch(&url).await;
            if s.status != StatusCode::ACCEPTED {
                return (s, polls);
            }
        }
        panic!("LRO did not finish in 50 polls");
    }

    /// PUT and wait for the LRO (either style) to succeed; returns the resource as GET sees it.
    pub async fn put_done(&self, path: &str, api: &str, body: &Value) -> Value {
        let a = self.put(path, api, body).await;
        assert!(
            a.status.is_success(),
            "PUT {path}: {} {:?}",
            a.status,
            a.body
        );
        self.finish(&a).await;
        let g = self.get(path, api).await;
        assert_eq!(g.status, StatusCode::OK, "{:?}", g.body);
        g.body
    }

    /// Waits for an LRO answer to finish successfully.
    pub async fn finish(&self, a: &Answer) {
        if a.header("azure-asyncoperation").is_some() {
            let (s, _) = self.wait_async(a).await;
            assert_eq!(s["status"], "Succeeded", "{s:?}");
        } else if a.header("location").is_some() {
            let (s, _) = self.wait_location(a).await;
            assert!(s.status.is_success(), "{:?}", s.body);
        }
    }

    pub async fn delete_done(&self, path: &str, api: &str) {
        let a = self.delete(path, api).await;
        assert!(
            a.status.is_success(),
            "DELETE {path}: {} {:?}",
            a.status,
            a.body
        );
        self.finish(&a).await;
    }

    pub fn resource_ids(&self) -> Vec<String> {
        self.emu.inventory()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }
}
