//! TLS: with `tls: true` the emulator serves https only, with a certificate for the loopback
//! names signed by a CA it hands out; a client trusting that CA talks to it, one that does not
//! is refused, and LRO and paging URLs are https too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_azure_emulator::{Emulator, EmulatorConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(ca_pem: Option<&str>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        roots
            .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request over TLS to `host` ("localhost" or "127.0.0.1"); the raw response.
async fn get(emu: &Emulator, ca: Option<&str>, host: &str, path: &str) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(emu.local_addr()).await?;
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let mut tls = client(ca).connect(name, tcp).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test]
async fn https_with_a_trusted_ca_and_https_urls_everywhere() {
    let emu = Emulator::start(EmulatorConfig {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        emu.arm_url().starts_with("https://127.0.0.1:"),
        "{}",
        emu.arm_url()
    );
    let ca = emu.ca_pem().unwrap().to_owned();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    for host in ["127.0.0.1", "localhost"] {
        let r = get(&emu, Some(&ca), host, "/healthz").await.unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    let sub = emu.subscription_id();
    let r = get(&emu, Some(&ca), "127.0.0.1", &format!(
        "/subscriptions/{sub}/resourceGroups/rg-egress/providers/Microsoft.Compute/virtualMachineScaleSets?api-version=2026-04-01"
    ))
    .await
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        get(&emu, None, "127.0.0.1", "/healthz").await.is_err(),
        "an untrusted CA is refused"
    );
    let plain = tokio::net::TcpStream::connect(emu.local_addr())
        .await
        .unwrap();
    let (mut rd, mut wr) = plain.into_split();
    wr.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rd.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("200"),
        "plain http is not served"
    );
    emu.shutdown().await;
}
