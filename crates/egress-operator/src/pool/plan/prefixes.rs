//! Pure decisions about a gateway's public IP prefix: which prefix it needs (its managed
//! prefix `egressgateway-<VM config UID>` in `resourceGroup`, or its BYO prefix) and of what
//! length (the profile's `publicIpPrefixSize`, else the pool's tag), whether what Azure has
//! fits, and the body of a managed prefix to create. Reading and writing is `apply::prefixes`.

use egress_azure::ResourceId;
use egress_azure::models::{PublicIpPrefix, PublicIpPrefixProperties, Sku};

use crate::config::AzureSettings;
use crate::pool::error::{MemberError, PoolError};
use crate::pool::gateway_pool::GatewayPool;
use crate::pool::plan::family::Family;
use crate::target::{Egress, ValidTarget};

/// A gateway's egress prefix, as Azure has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixInfo {
    /// Prefix resource ID.
    pub id: String,
    /// Its CIDR.
    pub cidr: String,
    /// IDs of the public IPs allocated from it (as read).
    pub public_ips: Vec<String>,
}

/// The prefix a gateway in public mode needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTarget {
    /// Its resource ID.
    pub id: ResourceId,
    /// Ours to create and delete (`egressgateway-<VM config UID>`), or the user's (BYO).
    pub managed: bool,
    /// The length the pool needs (a BYO IPv6 prefix may have any length Azure offers, as long
    /// as it holds the pool: `None`).
    pub length: Option<u8>,
    /// IPv4 or IPv6.
    pub family: Family,
}

/// What a gateway's egress needs from Azure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixNeed {
    /// Private mode: no prefix.
    None,
    /// This prefix.
    Prefix(PrefixTarget),
    /// Public mode, but no length is known (a node pool without a valid size tag).
    SizeUnknown(MemberError),
}

/// The prefix the gateway with VM configuration `vm_uid` and `target` needs on `pool`.
pub fn need(
    settings: &AzureSettings,
    pool: &GatewayPool,
    vm_uid: &str,
    target: &ValidTarget,
) -> PrefixNeed {
    let (id, managed) = match &target.egress {
        Egress::Private => return PrefixNeed::None,
        Egress::ManagedPrefix => (managed_prefix_id(settings, vm_uid, Family::V4), true),
        Egress::ByoPrefix(id) => (id.clone(), false),
    };
    match target.prefix_size.or_else(|| pool.tagged_prefix_size()) {
        Some(length) => PrefixNeed::Prefix(PrefixTarget {
            id,
            managed,
            length: Some(length),
            family: Family::V4,
        }),
        None => PrefixNeed::SizeUnknown(MemberError::PrefixSizeUnknown {
            pool: pool.describe(),
        }),
    }
}

/// The ID of the managed prefix of `family` of the gateway with VM configuration `vm_uid`.
pub fn managed_prefix_id(settings: &AzureSettings, vm_uid: &str, family: Family) -> ResourceId {
    settings
        .resource_group_id()
        .public_ip_prefix(&family.resource_name(vm_uid))
}

/// Whether the prefix Azure has (read or just created) is usable as `target`: the right IP
/// version and length block only this gateway when wrong; a prefix without an address range
/// yet stops the pass (Azure fills it in shortly, the retry will see it).
pub fn check(
    found: &PublicIpPrefix,
    target: &PrefixTarget,
) -> Result<Result<PrefixInfo, MemberError>, PoolError> {
    let version = found.properties.public_ip_address_version.as_deref();
    if !target.family.is(version) {
        return Ok(Err(MemberError::PrefixWrongVersion {
            id: target.id.to_string(),
            found: version.unwrap_or("IPv4").to_string(),
            wanted: target.family.version(),
        }));
    }
    let length = found.properties.prefix_length.unwrap_or(0);
    if let Some(required) = target.length.filter(|l| *l != length) {
        return Ok(Err(MemberError::PrefixLengthMismatch {
            id: target.id.to_string(),
            found: length,
            required,
        }));
    }
    let cidr = found
        .properties
        .ip_prefix
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| PoolError::MissingIp {
            instance: target.id.to_string(),
            why: "the public IP prefix has no address range yet".to_string(),
        })?;
    Ok(Ok(PrefixInfo {
        id: found.id.clone().unwrap_or_else(|| target.id.to_string()),
        cidr,
        public_ips: found
            .properties
            .public_ip_addresses
            .iter()
            .map(|s| s.id.clone())
            .collect(),
    }))
}

/// A new managed prefix: Standard, regional, of the target's family and length.
pub fn new_managed_prefix(settings: &AzureSettings, target: &PrefixTarget) -> PublicIpPrefix {
    PublicIpPrefix {
        location: Some(settings.location.clone()),
        sku: Some(Sku::standard_regional()),
        properties: PublicIpPrefixProperties {
            prefix_length: target.length,
            public_ip_address_version: Some(target.family.version().into()),
            ..Default::default()
        },
        ..Default::default()
    }
}
