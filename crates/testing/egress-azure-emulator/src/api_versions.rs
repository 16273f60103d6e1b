//! api-versions, as ARM checks them: every stable version the REST specification
//! (Azure/azure-rest-api-specs, `specification/{network,compute,resources}/resource-manager`)
//! has for a resource type is accepted, so current SDK defaults work out of the box; a missing,
//! malformed or unknown version gets the error ARM answers.

use crate::error::ArmError;

/// Stable `Microsoft.Network` versions (folders `Microsoft.Network/[Network/]stable/*`).
pub const NETWORK_API_VERSIONS: &[&str] = &[
    "2015-06-15",
    "2016-03-30",
    "2016-06-01",
    "2016-09-01",
    "2016-12-01",
    "2017-03-01",
    "2017-06-01",
    "2017-08-01",
    "2017-09-01",
    "2017-10-01",
    "2017-11-01",
    "2018-01-01",
    "2018-02-01",
    "2018-04-01",
    "2018-06-01",
    "2018-07-01",
    "2018-08-01",
    "2018-10-01",
    "2018-11-01",
    "2018-12-01",
    "2019-02-01",
    "2019-04-01",
    "2019-06-01",
    "2019-07-01",
    "2019-08-01",
    "2019-09-01",
    "2019-11-01",
    "2019-12-01",
    "2020-03-01",
    "2020-04-01",
    "2020-05-01",
    "2020-06-01",
    "2020-07-01",
    "2020-08-01",
    "2020-11-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2022-01-01",
    "2022-05-01",
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
    "2025-01-01",
    "2025-03-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2026-01-01",
    "2026-03-01",
];

/// Public IP prefixes exist from this Network version on.
const FIRST_PREFIX_VERSION: &str = "2018-07-01";

/// Stable `Microsoft.Compute` versions of the ComputeRP (scale sets, their instances, VMs).
pub const COMPUTE_API_VERSIONS: &[&str] = &[
    "2015-06-15",
    "2016-03-30",
    "2017-03-30",
    "2017-12-01",
    "2018-04-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-03-01",
    "2026-04-01",
];

/// Scale-set NICs and public IPs (Network APIs under Compute paths): the spec pins them to
/// `2018-10-01` (`stable/2018-10-01/vmssNetwork.json`); `2017-03-30` is the older pin.
pub const VMSS_NETWORK_API_VERSIONS: &[&str] = &["2017-03-30", "2018-10-01"];

/// `Microsoft.Resources` versions of resource groups.
pub const RESOURCES_API_VERSIONS: &[&str] = &[
    "2015-11-01",
    "2016-02-01",
    "2016-07-01",
    "2016-09-01",
    "2017-05-10",
    "2018-02-01",
    "2018-05-01",
    "2019-03-01",
    "2019-05-01",
    "2019-05-10",
    "2019-07-01",
    "2019-08-01",
    "2019-10-01",
    "2020-06-01",
    "2020-08-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-03-01",
    "2025-04-01",
];

/// IMDS api-versions accepted.
pub const IMDS_API_VERSIONS: &[&str] = &[
    "2019-06-01",
    "2020-06-01",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2021-10-01",
    "2021-11-01",
    "2021-11-15",
    "2021-12-13",
    "2023-07-01",
    "2023-11-15",
    "2024-03-15",
];

/// Which versions a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiFamily {
    /// Resource groups (ARM itself answers, so errors are `InvalidApiVersionParameter`).
    Resources,
    /// A Network type; the string is the type as ARM names it in errors (`loadBalancers`).
    Network(&'static str),
    /// A Compute type.
    Compute(&'static str),
    /// The Network RP's scale-set NIC / public IP APIs.
    VmssNetwork(&'static str),
    /// Polling URLs: they carry the version of the request that started the operation.
    Operations,
}

impl ApiFamily {
    fn versions(self) -> Vec<&'static str> {
        match self {
            Self::Resources => RESOURCES_API_VERSIONS.to_vec(),
            Self::Network("publicIPPrefixes") => NETWORK_API_VERSIONS
                .iter()
                .copied()
                .filter(|v| *v >= FIRST_PREFIX_VERSION)
                .collect(),
            Self::Network(_) => NETWORK_API_VERSIONS.to_vec(),
            Self::Compute(_) => COMPUTE_API_VERSIONS.to_vec(),
            Self::VmssNetwork(_) => VMSS_NETWORK_API_VERSIONS.to_vec(),
            Self::Operations => [
                NETWORK_API_VERSIONS,
                COMPUTE_API_VERSIONS,
                VMSS_NETWORK_API_VERSIONS,
            ]
            .concat(),
        }
    }

    fn type_name(self) -> Option<&'static str> {
        match self {
            Self::Network(t) | Self::Compute(t) | Self::VmssNetwork(t) => Some(t),
            Self::Resources | Self::Operations => None,
        }
    }
}

/// `YYYY-MM-DD` with an optional `-preview` / `-beta` suffix, as ARM parses api-versions.
pub(crate) fn well_formed(v: &str) -> bool {
    let (date, suffix) = v.split_at(v.len().min(10));
    let b = date.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    date.len() == 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (suffix.is_empty()
            || suffix
                .strip_prefix('-')
                .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())))
}

/// The request's api-version, or `MissingApiVersionParameter`.
pub(crate) fn present(version: Option<&str>) -> Result<&str, ArmError> {
    version.ok_or_else(|| {
        ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    })
}

/// Checks a version against the family: malformed ones are `InvalidApiVersionParameter`;
/// unknown ones `NoRegisteredProviderFound` for resource providers' types (what ARM's front
/// door answers) and `InvalidApiVersionParameter` for resource groups and polling URLs.
pub(crate) fn check(version: &str, family: ApiFamily, location: &str) -> Result<(), ArmError> {
    let accepted = family.versions();
    if accepted.contains(&version) {
        return Ok(());
    }
    let list = accepted.join(", ");
    Err(match family.type_name().filter(|_| well_formed(version)) {
        Some(t) => ArmError::bad_request(
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location '{location}' and API version '{version}' for type '{t}'. The supported api-versions are '{list}'. The supported locations are '{location}'."
            ),
        ),
        None => ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!("The api-version '{version}' is invalid. The supported versions are '{list}'."),
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn lists_are_sorted_and_unique() {
        for list in [
            NETWORK_API_VERSIONS,
            COMPUTE_API_VERSIONS,
            RESOURCES_API_VERSIONS,
            IMDS_API_VERSIONS,
        ] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            assert!(list.iter().all(|v| well_formed(v)));
        }
    }

    #[test]
    fn form_and_membership() {
        assert!(well_formed("2024-05-01"));
        assert!(well_formed("2024-05-01-preview"));
        for bad in ["2024-5-01", "latest", "2024-05-01-", "2024-05-01x", ""] {
            assert!(!well_formed(bad), "{bad}");
        }
        assert_eq!(
            present(None).unwrap_err().code,
            "MissingApiVersionParameter"
        );
        let e = check("x", ApiFamily::Network("loadBalancers"), "eastus").unwrap_err();
        assert_eq!(e.code, "InvalidApiVersionParameter");
        let e = check("2099-01-01", ApiFamily::Network("loadBalancers"), "eastus").unwrap_err();
        assert_eq!(e.code, "NoRegisteredProviderFound");
        assert!(e.message.contains("for type 'loadBalancers'"), "{e:?}");
        assert!(check("2017-03-01", ApiFamily::Network("publicIPPrefixes"), "x").is_err());
        assert!(check("2018-07-01", ApiFamily::Network("publicIPPrefixes"), "x").is_ok());
        let e = check("2099-01-01", ApiFamily::Resources, "x").unwrap_err();
        assert_eq!(e.code, "InvalidApiVersionParameter");
    }
}
