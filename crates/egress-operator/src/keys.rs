//! The gateway WireGuard key pair of one StaticGatewayConfiguration: generated from the OS
//! CSPRNG, stored only in the Secret `sgw-<SGC UID>` (keys `PrivateKey`, `PublicKey`, base64),
//! never logged, never rotated. This module is pure: building and reading the Secret; the SGC
//! controller does the API calls.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use egress_api::constants::{
    KEY_SECRET_PRIVATE_KEY, KEY_SECRET_PUBLIC_KEY, OWNING_SGC_NAME_LABEL,
    OWNING_SGC_NAMESPACE_LABEL, key_secret_name,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use x25519_dalek::{PublicKey, StaticSecret};

/// Why a stored key cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// `PrivateKey` is not base64 of 32 bytes. The value itself is never included.
    #[error("failed to read the private key in Secret {secret}: {why}")]
    InvalidPrivateKey {
        /// Secret name.
        secret: String,
        /// What is wrong (without the value).
        why: &'static str,
    },
}

/// A gateway key pair. `Debug` prints the public key only.
#[derive(Clone)]
pub struct GatewayKey {
    private: StaticSecret,
}

impl std::fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayKey")
            .field("public", &self.public_base64())
            .finish_non_exhaustive()
    }
}

impl GatewayKey {
    /// A fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self {
            private: StaticSecret::random(),
        }
    }

    /// Parses a base64 private key.
    pub fn from_private_base64(secret: &str, text: &[u8]) -> Result<Self, KeyError> {
        let invalid = |why| KeyError::InvalidPrivateKey {
            secret: secret.to_string(),
            why,
        };
        let text = std::str::from_utf8(text).map_err(|_| invalid("not UTF-8"))?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("not base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid("not 32 bytes long"))?;
        Ok(Self {
            private: StaticSecret::from(bytes),
        })
    }

    /// Base64 public key (as `wg pubkey` prints it).
    pub fn public_base64(&self) -> String {
        STANDARD.encode(PublicKey::from(&self.private).as_bytes())
    }

    fn private_base64(&self) -> String {
        STANDARD.encode(self.private.to_bytes())
    }
}

/// The Secret holding `key` for the SGC `namespace/name` with `uid`, in `secret_namespace`.
pub fn key_secret(
    secret_namespace: &str,
    sgc_namespace: &str,
    sgc_name: &str,
    sgc_uid: &str,
    key: &GatewayKey,
) -> Secret {
    let mut data = BTreeMap::new();
    data.insert(
        KEY_SECRET_PRIVATE_KEY.to_string(),
        ByteString(key.private_base64().into_bytes()),
    );
    data.insert(
        KEY_SECRET_PUBLIC_KEY.to_string(),
        ByteString(key.public_base64().into_bytes()),
    );
    Secret {
        metadata: ObjectMeta {
            name: Some(key_secret_name(sgc_uid)),
            namespace: Some(secret_namespace.to_string()),
            labels: Some(owning_labels(sgc_namespace, sgc_name)),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Default::default()
    }
}

/// The labels that map a key Secret back to its SGC.
pub fn owning_labels(sgc_namespace: &str, sgc_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            OWNING_SGC_NAMESPACE_LABEL.to_string(),
            sgc_namespace.to_string(),
        ),
        (OWNING_SGC_NAME_LABEL.to_string(), sgc_name.to_string()),
    ])
}

/// The key stored in `secret`, if it has a `PrivateKey`.
pub fn stored_key(secret: &Secret) -> Option<Result<GatewayKey, KeyError>> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let data = secret.data.as_ref()?;
    let private = data.get(KEY_SECRET_PRIVATE_KEY)?;
    Some(GatewayKey::from_private_base64(&name, &private.0))
}

/// True when the Secret's `PublicKey` and labels match what `key` and the SGC need.
pub fn secret_is_complete(secret: &Secret, key: &GatewayKey, ns: &str, name: &str) -> bool {
    let public_ok = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_SECRET_PUBLIC_KEY))
        .is_some_and(|p| p.0 == key.public_base64().as_bytes());
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    let labels_ok = owning_labels(ns, name)
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    public_ok && labels_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_round_trip_through_the_secret() {
        let a = GatewayKey::generate();
        let b = GatewayKey::generate();
        assert_ne!(a.public_base64(), b.public_base64());
        let s = key_secret("kube-system", "default", "gw", "u1", &a);
        assert_eq!(s.metadata.name.as_deref(), Some("sgw-u1"));
        let back = stored_key(&s).unwrap().unwrap();
        assert_eq!(back.public_base64(), a.public_base64());
        assert!(secret_is_complete(&s, &a, "default", "gw"));
        assert!(!secret_is_complete(&s, &a, "default", "other"));
        assert_eq!(a.public_base64().len(), 44);
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let k = GatewayKey::generate();
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&k.public_base64()));
        assert!(!dbg.contains(&k.private_base64()));
    }

    #[test]
    fn a_damaged_private_key_is_reported_without_its_value() {
        let e = GatewayKey::from_private_base64("sgw-1", b"c2hvcnQ=").unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to read the private key in Secret sgw-1: not 32 bytes long"
        );
        assert!(GatewayKey::from_private_base64("sgw-1", b"!!!").is_err());
    }

    #[test]
    fn a_known_private_key_gives_the_known_public_key() {
        // RFC 7748 section 6.1 test vector (Alice).
        let private = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
        let k = GatewayKey::from_private_base64("s", private.as_bytes()).unwrap();
        assert_eq!(
            k.public_base64(),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
    }
}
