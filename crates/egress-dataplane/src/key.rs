//! WireGuard keys: 32 bytes, base64 in and out, with private and public keys as distinct
//! types. A private key never appears in `Debug` or `Display` output.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

/// Why a key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not valid base64 or not exactly 32 bytes once decoded.
    #[error(
        "failed to parse WireGuard {kind} key: expected 44 characters of base64 encoding 32 bytes, got {len} characters"
    )]
    Invalid {
        /// `private` or `public`.
        kind: &'static str,
        /// Length of the rejected input (the input itself is not echoed: it may be a secret).
        len: usize,
    },
    /// The all-zero key, which WireGuard treats as "no key".
    #[error("failed to parse WireGuard {kind} key: the all-zero key is not a usable key")]
    Zero {
        /// `private` or `public`.
        kind: &'static str,
    },
}

/// Marker for private keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Private {}
/// Marker for public keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Public {}

/// What distinguishes the key kinds at the type level.
pub trait KeyKind {
    /// `private` or `public`, for messages.
    const NAME: &'static str;
}
impl KeyKind for Private {
    const NAME: &'static str = "private";
}
impl KeyKind for Public {
    const NAME: &'static str = "public";
}

/// A WireGuard key of kind `K` ([`Private`] or [`Public`]).
pub struct WgKey<K> {
    bytes: [u8; 32],
    kind: PhantomData<K>,
}

/// A WireGuard private key.
pub type PrivateKey = WgKey<Private>;
/// A WireGuard public key.
pub type PublicKey = WgKey<Public>;

impl<K> WgKey<K> {
    fn from_bytes_unchecked(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            kind: PhantomData,
        }
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub(crate) fn to_wg(&self) -> wireguard_control::Key {
        wireguard_control::Key(self.bytes)
    }

    pub(crate) fn from_wg(key: &wireguard_control::Key) -> Self {
        Self::from_bytes_unchecked(key.0)
    }
}

impl<K: KeyKind> WgKey<K> {
    /// Parses standard base64 (the `wg genkey` / `wg pubkey` format).
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let key = wireguard_control::Key::from_base64(s.trim()).map_err(|_| KeyError::Invalid {
            kind: K::NAME,
            len: s.len(),
        })?;
        Self::from_bytes(key.0)
    }

    /// Takes 32 raw bytes; rejects the all-zero key.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        if bytes == [0u8; 32] {
            return Err(KeyError::Zero { kind: K::NAME });
        }
        Ok(Self::from_bytes_unchecked(bytes))
    }
}

impl PrivateKey {
    /// A fresh random private key (clamped as Curve25519 requires).
    pub fn generate() -> Self {
        Self::from_wg(&wireguard_control::Key::generate_private())
    }

    /// The public key belonging to this private key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_wg(&self.to_wg().get_public())
    }

    /// The base64 encoding of the secret. Named so that every use is visible in review.
    pub fn expose_base64(&self) -> String {
        self.to_wg().to_base64()
    }
}

impl PublicKey {
    /// The base64 encoding (`wg pubkey` format).
    pub fn to_base64(&self) -> String {
        self.to_wg().to_base64()
    }
}

impl<K: KeyKind> FromStr for WgKey<K> {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

impl<K> Clone for WgKey<K> {
    fn clone(&self) -> Self {
        Self::from_bytes_unchecked(self.bytes)
    }
}

impl<K> PartialEq for WgKey<K> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl<K> Eq for WgKey<K> {}

impl<K> PartialOrd for WgKey<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for WgKey<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.bytes.cmp(&other.bytes)
    }
}
impl<K> Hash for WgKey<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// Shows which key it is (by its public key) without revealing the secret.
impl fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<private key of {}>", self.public_key())
    }
}
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted>, public {})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    // From wireguard-tools' documentation examples (a published test vector, not a secret).
    const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PUB: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    #[test]
    fn base64_round_trips_and_derives_public_key() {
        let private: PrivateKey = PRIV.parse().unwrap();
        assert_eq!(private.expose_base64(), PRIV);
        assert_eq!(private.public_key().to_base64(), PUB);
        let public: PublicKey = PUB.parse().unwrap();
        assert_eq!(public, private.public_key());
        assert_eq!(public.to_string(), PUB);
    }

    #[test]
    fn private_key_is_never_printed() {
        let private: PrivateKey = PRIV.parse().unwrap();
        let shown = format!("{private} {private:?} {:?}", Some(&private));
        assert!(!shown.contains(PRIV), "{shown}");
        assert!(!shown.contains(&PRIV[..20]), "{shown}");
        assert!(shown.contains(PUB), "identifies the key by its public half");
    }

    #[test]
    fn rejects_bad_input_without_echoing_it() {
        let err = "not-a-key".parse::<PrivateKey>().unwrap_err();
        assert_eq!(
            err,
            KeyError::Invalid {
                kind: "private",
                len: 9
            }
        );
        assert!(!err.to_string().contains("not-a-key"));
        // 31 bytes.
        let short = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
        assert!(short.parse::<PublicKey>().is_err());
        let zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(
            zero.parse::<PublicKey>().unwrap_err(),
            KeyError::Zero { kind: "public" }
        );
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(PrivateKey::generate(), PrivateKey::generate());
    }
}
