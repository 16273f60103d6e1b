//! Names parsed at the boundary: interface names, network namespace names and references.
//!
//! Owns the validation rules the kernel and `ip netns` apply to names; nothing here touches
//! the system.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("failed to parse {what} {name:?}: it is empty")]
    Empty {
        /// What kind of name was being parsed.
        what: &'static str,
        /// The rejected input.
        name: String,
    },
    /// The name is longer than the kernel allows.
    #[error("failed to parse {what} {name:?}: it is {len} bytes long, the limit is {max}")]
    TooLong {
        /// What kind of name was being parsed.
        what: &'static str,
        /// The rejected input.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The name contains a character the kernel or `ip netns` rejects.
    #[error("failed to parse {what} {name:?}: character {ch:?} is not allowed")]
    InvalidChar {
        /// What kind of name was being parsed.
        what: &'static str,
        /// The rejected input.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// The name is one the kernel reserves (`.` or `..`).
    #[error("failed to parse {what} {name:?}: the name is reserved")]
    Reserved {
        /// What kind of name was being parsed.
        what: &'static str,
        /// The rejected input.
        name: String,
    },
}

/// Longest interface name the kernel accepts (`IFNAMSIZ` minus the terminating NUL).
pub const IFNAME_MAX: usize = 15;

/// A Linux network interface name: 1 to 15 bytes, no `/`, `:`, whitespace or control
/// characters, and not `.` or `..` (the kernel's `dev_valid_name`, plus `:` which
/// would be read as an address label).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The interface of a gateway WireGuard tunnel for a listen port: `wg-<port>`.
    pub fn for_gateway_port(port: u16) -> Self {
        // "wg-65535" is 8 bytes of ASCII: always valid.
        Self(format!("wg-{port}"))
    }

    /// The name a pod's tunnel device has in the node namespace (the kernel's temporary
    /// link, or wireguard-go's daemon and UAPI socket) before it is moved into the pod and
    /// renamed `wg0`: `wgp` + 12 hex digits of a hash of the sandbox's container ID. Unique
    /// per sandbox, stable across plugin runs (DEL finds it without the pod namespace), and
    /// never equal to a gateway device name (`wg-<port>`, `wg<13 hex>`: `p` is not hex).
    pub fn for_pod_socket(container_id: &str) -> Self {
        // FNV-1a, 64 bit, top 48 bits: stable across Rust versions (unlike DefaultHasher).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in container_id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // "wgp" + 12 hex digits = 15 bytes of ASCII: always valid.
        Self(format!("wgp{:012x}", hash >> 16))
    }
}

impl FromStr for InterfaceName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "interface name";
        if s.is_empty() {
            return Err(NameError::Empty {
                what: WHAT,
                name: s.into(),
            });
        }
        if s.len() > IFNAME_MAX {
            return Err(NameError::TooLong {
                what: WHAT,
                name: s.into(),
                len: s.len(),
                max: IFNAME_MAX,
            });
        }
        if s == "." || s == ".." {
            return Err(NameError::Reserved {
                what: WHAT,
                name: s.into(),
            });
        }
        if let Some(ch) = s
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(NameError::InvalidChar {
                what: WHAT,
                name: s.into(),
                ch,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Directory where named network namespaces are bind-mounted, as `ip netns` does.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A named network namespace (a file under `/run/netns`): 1 to 255 bytes of
/// `[A-Za-z0-9._-]`, not `.` or `..`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetnsName(String);

impl NetnsName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bind-mount path of this namespace: `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_RUN_DIR).join(&self.0)
    }
}

impl FromStr for NetnsName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "network namespace name";
        const MAX: usize = 255;
        if s.is_empty() {
            return Err(NameError::Empty {
                what: WHAT,
                name: s.into(),
            });
        }
        if s.len() > MAX {
            return Err(NameError::TooLong {
                what: WHAT,
                name: s.into(),
                len: s.len(),
                max: MAX,
            });
        }
        if s == "." || s == ".." {
            return Err(NameError::Reserved {
                what: WHAT,
                name: s.into(),
            });
        }
        if let Some(ch) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(NameError::InvalidChar {
                what: WHAT,
                name: s.into(),
                ch,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Which network namespace an operation targets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetnsRef {
    /// The namespace of this process (the host namespace in production).
    Current,
    /// A named namespace under `/run/netns`.
    Named(NetnsName),
    /// A namespace file given by path (for example the one a CNI runtime passes).
    Path(PathBuf),
}

impl NetnsRef {
    /// The file to open for `setns`, or `None` for the current namespace.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            NetnsRef::Current => None,
            NetnsRef::Named(name) => Some(name.path()),
            NetnsRef::Path(path) => Some(path.clone()),
        }
    }
}

impl fmt::Display for NetnsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsRef::Current => f.write_str("host netns"),
            NetnsRef::Named(name) => write!(f, "netns {name}"),
            NetnsRef::Path(path) => write!(f, "netns {}", path.display()),
        }
    }
}

impl From<NetnsName> for NetnsRef {
    fn from(name: NetnsName) -> Self {
        NetnsRef::Named(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn interface_names_follow_kernel_rules() {
        assert_eq!(
            "wg-6000".parse::<InterfaceName>().unwrap().as_str(),
            "wg-6000"
        );
        assert!("eth0.100".parse::<InterfaceName>().is_ok());
        assert!("a23456789012345".parse::<InterfaceName>().is_ok());
        let err = "a234567890123456".parse::<InterfaceName>().unwrap_err();
        assert!(
            err.to_string().contains("16 bytes long, the limit is 15"),
            "{err}"
        );
        assert!(matches!(
            "".parse::<InterfaceName>(),
            Err(NameError::Empty { .. })
        ));
        assert!(matches!(
            "eth0:egress".parse::<InterfaceName>(),
            Err(NameError::InvalidChar { ch: ':', .. })
        ));
        assert!(matches!(
            "a/b".parse::<InterfaceName>(),
            Err(NameError::InvalidChar { ch: '/', .. })
        ));
        assert!(matches!(
            "a b".parse::<InterfaceName>(),
            Err(NameError::InvalidChar { ch: ' ', .. })
        ));
        assert!(matches!(
            "..".parse::<InterfaceName>(),
            Err(NameError::Reserved { .. })
        ));
        // Bytes, not characters: 8 two-byte characters exceed the limit.
        assert!("éééééééé".parse::<InterfaceName>().is_err());
    }

    #[test]
    fn gateway_interface_name_is_wg_dash_port() {
        assert_eq!(InterfaceName::for_gateway_port(6000).as_str(), "wg-6000");
        assert_eq!(InterfaceName::for_gateway_port(65535).as_str(), "wg-65535");
    }

    #[test]
    fn pod_socket_names_are_unique_stable_and_valid() {
        let a = InterfaceName::for_pod_socket(
            "4f0c5b9e2d8a7c61b3e9f02d5a6c8b7e1f4d3a2c9b8e7f6a5d4c3b2a1e0f9d8c",
        );
        // Same prefix, different tail: containerd IDs often share long prefixes in tests.
        let b = InterfaceName::for_pod_socket(
            "4f0c5b9e2d8a7c61b3e9f02d5a6c8b7e1f4d3a2c9b8e7f6a5d4c3b2a1e0f9d8d",
        );
        assert_ne!(a, b);
        assert_eq!(
            a,
            InterfaceName::for_pod_socket(
                "4f0c5b9e2d8a7c61b3e9f02d5a6c8b7e1f4d3a2c9b8e7f6a5d4c3b2a1e0f9d8c"
            )
        );
        for n in [&a, &b, &InterfaceName::for_pod_socket("")] {
            assert_eq!(n.as_str().len(), IFNAME_MAX, "{n}");
            assert!(n.as_str().starts_with("wgp"));
            assert_eq!(n.as_str().parse::<InterfaceName>().unwrap(), *n);
        }
        let many: std::collections::BTreeSet<InterfaceName> = (0..10_000)
            .map(|i| InterfaceName::for_pod_socket(&format!("ctr{i}")))
            .collect();
        assert_eq!(many.len(), 10_000);
    }

    #[test]
    fn netns_names_are_file_names() {
        let n: NetnsName = "ns-static-egress-gateway".parse().unwrap();
        assert_eq!(
            n.path(),
            PathBuf::from("/run/netns/ns-static-egress-gateway")
        );
        assert!("../etc".parse::<NetnsName>().is_err());
        assert!("a b".parse::<NetnsName>().is_err());
        assert!(".".parse::<NetnsName>().is_err());
        assert!("".parse::<NetnsName>().is_err());
    }
}
