//! Optional TLS: a throwaway CA made at start and a server certificate it signs for the
//! listening address (`localhost`, `127.0.0.1`, `::1` and the bind address), served with rustls
//! on the ring provider. Clients that insist on https (the Azure SDKs send bearer tokens only
//! over TLS) trust the CA's PEM (`Emulator::ca_pem`, or the file the binary writes) through
//! their usual setting (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`, `connection_verify`).

use crate::error::EmulatorError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::IpAddr;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The TLS material of a running emulator.
#[derive(Clone)]
pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    /// The CA certificate clients must trust (PEM).
    pub ca_pem: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Tls(format!("{what}: {e}"))
}

/// Makes a CA and a server certificate for `host` and the loopback names.
pub(crate) fn generate(host: IpAddr) -> Result<Tls, EmulatorError> {
    let ca_key = KeyPair::generate().map_err(|e| failed("failed to generate the CA key", e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| failed("failed to build the CA", e))?;
    ca.distinguished_name
        .push(DnType::CommonName, "egress-azure-emulator test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| failed("failed to sign the CA", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !host.is_loopback() && !host.is_unspecified() {
        names.push(host.to_string());
    }
    let key = KeyPair::generate().map_err(|e| failed("failed to generate the server key", e))?;
    let mut leaf =
        CertificateParams::new(names).map_err(|e| failed("failed to build the certificate", e))?;
    leaf.distinguished_name
        .push(DnType::CommonName, "egress-azure-emulator");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf
        .signed_by(&key, &issuer)
        .map_err(|e| failed("failed to sign the certificate", e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("failed to configure TLS", e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(cert.der().to_vec()),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| failed("failed to use the certificate", e))?;
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca_cert.pem(),
    })
}
