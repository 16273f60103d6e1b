//! Request routing: maps a (case-insensitive) ARM path to a `Target`, names the operation the way
//! the Azure SDKs do (`LoadBalancers.CreateOrUpdate`), and knows which api-versions each accepts.

use crate::error::ArmError;
use crate::http::Req;

/// Network api-versions accepted (the client targets 2024-05-01).
pub const NETWORK_API_VERSIONS: &[&str] = &[
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
];
/// Compute api-versions accepted (the client targets 2024-07-01).
pub const COMPUTE_API_VERSIONS: &[&str] = &["2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01"];
/// Resource Manager (resource groups) api-versions accepted.
pub const RESOURCES_API_VERSIONS: &[&str] = &[
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
];
/// The VMSS-instance NIC API of Microsoft.Network only exists in 2018-10-01 in real Azure; the
/// emulator also accepts the regular Network versions there.
pub const VMSS_NIC_API_VERSIONS: &[&str] = &["2018-10-01"];
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

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Healthz,
    Admin(Vec<String>),
    /// IMDS for one VM (`vm` from `/imds/{computerName}`; `None`: identify by peer address).
    Imds {
        vm: Option<String>,
        rest: Vec<String>,
    },
    /// Entra ID token endpoint (`/{tenant}/oauth2/v2.0/token`).
    Token {
        tenant: String,
    },
    Operation {
        result: bool,
        id: String,
    },
    ResourceGroup {
        sub: String,
        rg: String,
    },
    Res {
        sub: String,
        rg: String,
        kind: Kind,
    },
    /// Resource type the emulator does not serve.
    Unknown {
        provider: String,
        kind: String,
    },
    NotFound,
}

/// Resource kinds below a resource group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    LoadBalancer(String),
    PublicIpPrefix(String),
    PublicIpAddress(String),
    NetworkInterfaces,
    NetworkInterface(String),
    VirtualNetwork(String),
    Subnet(String, String),
    ScaleSets,
    ScaleSet(String),
    ScaleSetManualUpgrade(String),
    ScaleSetVms(String),
    ScaleSetVm(String, String),
    ScaleSetVmNic(String, String, String),
    VirtualMachines,
    VirtualMachine(String),
}

/// Which family of api-versions a target accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiFamily {
    Resources,
    Network,
    Compute,
    VmssNic,
    Operations,
}

fn lower(s: &[String]) -> Vec<String> {
    s.iter().map(|x| x.to_ascii_lowercase()).collect()
}

/// Resolves the target of a request.
pub(crate) fn route(req: &Req) -> Target {
    let o = &req.segs;
    let l = lower(o);
    let l: Vec<&str> = l.iter().map(String::as_str).collect();
    match l.as_slice() {
        [] | ["healthz"] | ["readyz"] => Target::Healthz,
        ["admin", ..] => Target::Admin(o[1..].to_vec()),
        ["imds", _, "metadata", ..] => Target::Imds {
            vm: Some(o[1].clone()),
            rest: l[3..].iter().map(|s| (*s).to_owned()).collect(),
        },
        ["metadata", ..] => Target::Imds {
            vm: None,
            rest: l[1..].iter().map(|s| (*s).to_owned()).collect(),
        },
        [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"] => Target::Token {
            tenant: o[0].clone(),
        },
        [
            "subscriptions",
            _,
            "providers",
            _,
            "locations",
            _,
            kind @ ("operations" | "operationresults"),
            _,
        ] => Target::Operation {
            result: *kind == "operationresults",
            id: o[7].clone(),
        },
        ["subscriptions", _, "resourcegroups", _] => Target::ResourceGroup {
            sub: o[1].clone(),
            rg: o[3].clone(),
        },
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            provider,
            rest @ ..,
        ] => {
            let kind = match (*provider, rest) {
                ("microsoft.network", ["loadbalancers", _]) => {
                    Some(Kind::LoadBalancer(o[7].clone()))
                }
                ("microsoft.network", ["publicipprefixes", _]) => {
                    Some(Kind::PublicIpPrefix(o[7].clone()))
                }
                ("microsoft.network", ["publicipaddresses", _]) => {
                    Some(Kind::PublicIpAddress(o[7].clone()))
                }
                ("microsoft.network", ["networkinterfaces"]) => Some(Kind::NetworkInterfaces),
                ("microsoft.network", ["networkinterfaces", _]) => {
                    Some(Kind::NetworkInterface(o[7].clone()))
                }
                ("microsoft.network", ["virtualnetworks", _]) => {
                    Some(Kind::VirtualNetwork(o[7].clone()))
                }
                ("microsoft.network", ["virtualnetworks", _, "subnets", _]) => {
                    Some(Kind::Subnet(o[7].clone(), o[9].clone()))
                }
                ("microsoft.compute", ["virtualmachinescalesets"]) => Some(Kind::ScaleSets),
                ("microsoft.compute", ["virtualmachinescalesets", _]) => {
                    Some(Kind::ScaleSet(o[7].clone()))
                }
                ("microsoft.compute", ["virtualmachinescalesets", _, "manualupgrade"]) => {
                    Some(Kind::ScaleSetManualUpgrade(o[7].clone()))
                }
                ("microsoft.compute", ["virtualmachinescalesets", _, "virtualmachines"]) => {
                    Some(Kind::ScaleSetVms(o[7].clone()))
                }
                ("microsoft.compute", ["virtualmachinescalesets", _, "virtualmachines", _]) => {
                    Some(Kind::ScaleSetVm(o[7].clone(), o[9].clone()))
                }
                (
                    "microsoft.compute",
                    [
                        "virtualmachinescalesets",
                        _,
                        "virtualmachines",
                        _,
                        "networkinterfaces",
                        _,
                    ],
                ) => Some(Kind::ScaleSetVmNic(
                    o[7].clone(),
                    o[9].clone(),
                    o[11].clone(),
                )),
                ("microsoft.compute", ["virtualmachines"]) => Some(Kind::VirtualMachines),
                ("microsoft.compute", ["virtualmachines", _]) => {
                    Some(Kind::VirtualMachine(o[7].clone()))
                }
                _ => None,
            };
            match kind {
                Some(kind) => Target::Res {
                    sub: o[1].clone(),
                    rg: o[3].clone(),
                    kind,
                },
                None => Target::Unknown {
                    provider: o[5].clone(),
                    kind: o.get(6).cloned().unwrap_or_default(),
                },
            }
        }
        _ => Target::NotFound,
    }
}

impl Target {
    /// Operation name as the Azure SDKs call it.
    pub fn operation(&self, method: &str) -> String {
        let m = method.to_ascii_uppercase();
        let verb = |get: &str, put: &str, patch: &str, delete: &str| -> String {
            match m.as_str() {
                "GET" => get,
                "PUT" => put,
                "PATCH" => patch,
                "DELETE" => delete,
                _ => "Unsupported",
            }
            .to_owned()
        };
        let crud = || verb("Get", "CreateOrUpdate", "UpdateTags", "Delete");
        match self {
            Target::Healthz => "Healthz".into(),
            Target::Admin(_) => "Admin".into(),
            Target::Imds { rest, .. } => match rest.first().map(String::as_str) {
                Some("loadbalancer") => "Imds.LoadBalancer".into(),
                Some("identity") => "Imds.Token".into(),
                _ => "Imds.Instance".into(),
            },
            Target::Token { .. } => "EntraId.Token".into(),
            Target::Operation { result: false, .. } => "Operations.GetStatus".into(),
            Target::Operation { result: true, .. } => "Operations.GetResult".into(),
            Target::ResourceGroup { .. } => format!("ResourceGroups.{}", crud()),
            Target::Unknown { .. } | Target::NotFound => "Unknown".into(),
            Target::Res { kind, .. } => match kind {
                Kind::LoadBalancer(_) => format!("LoadBalancers.{}", crud()),
                Kind::PublicIpPrefix(_) => format!("PublicIPPrefixes.{}", crud()),
                Kind::PublicIpAddress(_) => format!("PublicIPAddresses.{}", crud()),
                Kind::NetworkInterfaces => "NetworkInterfaces.List".into(),
                Kind::NetworkInterface(_) => format!("NetworkInterfaces.{}", crud()),
                Kind::VirtualNetwork(_) => format!("VirtualNetworks.{}", crud()),
                Kind::Subnet(..) => format!("Subnets.{}", crud()),
                Kind::ScaleSets => "VirtualMachineScaleSets.List".into(),
                Kind::ScaleSet(_) => format!(
                    "VirtualMachineScaleSets.{}",
                    verb("Get", "CreateOrUpdate", "Update", "Delete")
                ),
                Kind::ScaleSetManualUpgrade(_) => "VirtualMachineScaleSets.UpdateInstances".into(),
                Kind::ScaleSetVms(_) => "VirtualMachineScaleSetVMs.List".into(),
                Kind::ScaleSetVm(..) => format!(
                    "VirtualMachineScaleSetVMs.{}",
                    verb("Get", "Update", "Update", "Delete")
                ),
                Kind::ScaleSetVmNic(..) => {
                    "NetworkInterfaces.GetVirtualMachineScaleSetNetworkInterface".into()
                }
                Kind::VirtualMachines => "VirtualMachines.List".into(),
                Kind::VirtualMachine(_) => format!("VirtualMachines.{}", crud()),
            },
        }
    }

    /// api-version family, `None` for targets that are not ARM (admin, IMDS, token).
    pub fn api_family(&self) -> Option<ApiFamily> {
        match self {
            Target::ResourceGroup { .. } => Some(ApiFamily::Resources),
            Target::Operation { .. } => Some(ApiFamily::Operations),
            Target::Res { kind, .. } => Some(match kind {
                Kind::ScaleSetVmNic(..) => ApiFamily::VmssNic,
                Kind::ScaleSets
                | Kind::ScaleSet(_)
                | Kind::ScaleSetManualUpgrade(_)
                | Kind::ScaleSetVms(_)
                | Kind::ScaleSetVm(..)
                | Kind::VirtualMachines
                | Kind::VirtualMachine(_) => ApiFamily::Compute,
                _ => ApiFamily::Network,
            }),
            Target::Unknown { .. } => Some(ApiFamily::Network),
            _ => None,
        }
    }
}

/// Checks the `api-version` query parameter as ARM does.
pub(crate) fn check_api_version(req: &Req, family: ApiFamily) -> Result<(), ArmError> {
    let Some(v) = req.api_version() else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let accepted: Vec<&str> = match family {
        ApiFamily::Resources => RESOURCES_API_VERSIONS.to_vec(),
        ApiFamily::Network => NETWORK_API_VERSIONS.to_vec(),
        ApiFamily::Compute => COMPUTE_API_VERSIONS.to_vec(),
        ApiFamily::VmssNic => [VMSS_NIC_API_VERSIONS, NETWORK_API_VERSIONS].concat(),
        ApiFamily::Operations => [NETWORK_API_VERSIONS, COMPUTE_API_VERSIONS].concat(),
    };
    if accepted.contains(&v) {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                accepted.join(",")
            ),
        ))
    }
}
