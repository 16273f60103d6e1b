//! Request routing: maps a (case-insensitive) path to a `Target`. Operation names are in
//! `names`, the top-level type table in `types`, api-versions in `crate::api_versions`.

mod names;
mod types;

pub(crate) use types::TopType;

use crate::api_versions::ApiFamily;

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
    /// Polling URLs of long-running operations (`operations/{id}` or `operationResults/{id}`).
    Operation {
        result: bool,
        id: String,
    },
    /// `/subscriptions/{sub}/resourcegroups`.
    ResourceGroups {
        sub: String,
    },
    ResourceGroup {
        sub: String,
        rg: String,
    },
    /// `/subscriptions/{sub}/providers/{ns}/{collection}` (ListAll).
    SubscriptionList {
        sub: String,
        top: TopType,
    },
    Res {
        sub: String,
        rg: String,
        kind: Kind,
    },
    /// A provider namespace the emulator knows, with a resource type it does not serve.
    UnknownType {
        namespace: String,
        type_: String,
    },
    /// A provider namespace the emulator does not serve at all.
    UnknownNamespace {
        namespace: String,
    },
    /// Not an ARM path.
    NotFound,
}

/// What a path below a resource group names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A collection of a top-level type in the group.
    List(TopType),
    /// One top-level resource.
    Item(TopType, String),
    Subnets(String),
    Subnet(String, String),
    /// `POST .../virtualMachineScaleSets/{vmss}/manualupgrade`.
    ManualUpgrade(String),
    ScaleSetVms(String),
    ScaleSetVm(String, String),
    ScaleSetVmInstanceView(String, String),
    VirtualMachineInstanceView(String),
    /// The Network RP's reads of scale-set NICs and public IPs.
    VmssNetwork(VmssNetwork),
}

/// Scale-set NIC / ipConfiguration / public IP reads (Network APIs under Compute paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VmssNetwork {
    Nics {
        vmss: String,
    },
    VmNics {
        vmss: String,
        vm: String,
    },
    Nic {
        vmss: String,
        vm: String,
        nic: String,
    },
    IpConfigs {
        vmss: String,
        vm: String,
        nic: String,
    },
    IpConfig {
        vmss: String,
        vm: String,
        nic: String,
        ipc: String,
    },
    Pips {
        vmss: String,
    },
    VmPips {
        vmss: String,
        vm: String,
        nic: String,
        ipc: String,
    },
    Pip {
        vmss: String,
        vm: String,
        nic: String,
        ipc: String,
        pip: String,
    },
}

fn lower(s: &[String]) -> Vec<String> {
    s.iter().map(|x| x.to_ascii_lowercase()).collect()
}

/// Resolves the target of a request path (split into decoded segments).
pub(crate) fn route(segs: &[String]) -> Target {
    let o = segs;
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
        ["subscriptions", _, "resourcegroups"] => Target::ResourceGroups { sub: o[1].clone() },
        ["subscriptions", _, "resourcegroups", _] => Target::ResourceGroup {
            sub: o[1].clone(),
            rg: o[3].clone(),
        },
        ["subscriptions", _, "providers", ns, rest @ ..] => match rest {
            [collection] => match TopType::from_segments(ns, collection) {
                Some(top) => Target::SubscriptionList {
                    sub: o[1].clone(),
                    top,
                },
                None => unknown(&o[3], &o[4..]),
            },
            _ => unknown(&o[3], &o[4..]),
        },
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            ns,
            rest @ ..,
        ] => match below_group(ns, rest, &o[6..]) {
            Some(kind) => Target::Res {
                sub: o[1].clone(),
                rg: o[3].clone(),
                kind,
            },
            None => unknown(&o[5], &o[6..]),
        },
        _ => Target::NotFound,
    }
}

fn unknown(namespace: &str, rest: &[String]) -> Target {
    let known = ["microsoft.network", "microsoft.compute"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(namespace));
    if !known {
        return Target::UnknownNamespace {
            namespace: namespace.to_owned(),
        };
    }
    // ARM names nested types as `parent/child` (`virtualMachineScaleSets/extensions`).
    let type_ = rest
        .iter()
        .step_by(2)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("/");
    Target::UnknownType {
        namespace: namespace.to_owned(),
        type_,
    }
}

/// `l`: lower-cased segments after `providers/{ns}`, `o`: the same segments as sent.
fn below_group(ns: &str, l: &[&str], o: &[String]) -> Option<Kind> {
    let s = |i: usize| o[i].clone();
    let kind = match (ns, l) {
        (_, [collection]) => Kind::List(TopType::from_segments(ns, collection)?),
        ("microsoft.network", ["virtualnetworks", _, "subnets"]) => Kind::Subnets(s(1)),
        ("microsoft.network", ["virtualnetworks", _, "subnets", _]) => Kind::Subnet(s(1), s(3)),
        ("microsoft.compute", ["virtualmachinescalesets", _, rest @ ..]) => scale_set(rest, o)?,
        ("microsoft.compute", ["virtualmachines", _, "instanceview"]) => {
            Kind::VirtualMachineInstanceView(s(1))
        }
        (_, [collection, _]) => Kind::Item(TopType::from_segments(ns, collection)?, s(1)),
        _ => return None,
    };
    Some(kind)
}

/// Paths below `virtualMachineScaleSets/{vmss}` (`l` starts after the name).
fn scale_set(l: &[&str], o: &[String]) -> Option<Kind> {
    let s = |i: usize| o[i].clone();
    let vmss = s(1);
    let net = |n: VmssNetwork| Some(Kind::VmssNetwork(n));
    match l {
        [] => Some(Kind::Item(TopType::ScaleSet, vmss)),
        ["manualupgrade"] => Some(Kind::ManualUpgrade(vmss)),
        ["networkinterfaces"] => net(VmssNetwork::Nics { vmss }),
        ["publicipaddresses"] => net(VmssNetwork::Pips { vmss }),
        ["virtualmachines"] => Some(Kind::ScaleSetVms(vmss)),
        ["virtualmachines", _] => Some(Kind::ScaleSetVm(vmss, s(3))),
        ["virtualmachines", _, "instanceview"] => Some(Kind::ScaleSetVmInstanceView(vmss, s(3))),
        ["virtualmachines", _, "networkinterfaces"] => net(VmssNetwork::VmNics { vmss, vm: s(3) }),
        ["virtualmachines", _, "networkinterfaces", _, rest @ ..] => {
            let (vm, nic) = (s(3), s(5));
            let pip = |ipc, pip| VmssNetwork::Pip {
                vmss: vmss.clone(),
                vm: vm.clone(),
                nic: nic.clone(),
                ipc,
                pip,
            };
            net(match rest {
                [] => VmssNetwork::Nic { vmss, vm, nic },
                ["ipconfigurations"] => VmssNetwork::IpConfigs { vmss, vm, nic },
                ["ipconfigurations", _] => VmssNetwork::IpConfig {
                    vmss,
                    vm,
                    nic,
                    ipc: s(7),
                },
                ["ipconfigurations", _, "publicipaddresses"] => VmssNetwork::VmPips {
                    vmss,
                    vm,
                    nic,
                    ipc: s(7),
                },
                ["ipconfigurations", _, "publicipaddresses", _] => pip(s(7), s(9)),
                _ => return None,
            })
        }
        _ => None,
    }
}

impl Target {
    /// api-version family, `None` for targets that are not ARM (admin, IMDS, token) or not
    /// served (their own error answers first).
    pub fn api_family(&self) -> Option<ApiFamily> {
        match self {
            Target::ResourceGroups { .. } | Target::ResourceGroup { .. } => {
                Some(ApiFamily::Resources)
            }
            Target::Operation { .. } => Some(ApiFamily::Operations),
            Target::SubscriptionList { top, .. } => Some(top.family()),
            Target::Res { kind, .. } => Some(match kind {
                Kind::List(t) | Kind::Item(t, _) => t.family(),
                Kind::Subnets(_) | Kind::Subnet(..) => {
                    ApiFamily::Network("virtualNetworks/subnets")
                }
                Kind::ManualUpgrade(_) => ApiFamily::Compute("virtualMachineScaleSets"),
                Kind::ScaleSetVms(_) | Kind::ScaleSetVm(..) | Kind::ScaleSetVmInstanceView(..) => {
                    ApiFamily::Compute("virtualMachineScaleSets/virtualMachines")
                }
                Kind::VirtualMachineInstanceView(_) => ApiFamily::Compute("virtualMachines"),
                Kind::VmssNetwork(n) => ApiFamily::VmssNetwork(n.arm_type()),
            }),
            _ => None,
        }
    }
}

impl VmssNetwork {
    /// The type as ARM names it in errors.
    pub fn arm_type(&self) -> &'static str {
        match self {
            Self::Nics { .. } | Self::VmNics { .. } | Self::Nic { .. } => {
                "virtualMachineScaleSets/virtualMachines/networkInterfaces"
            }
            Self::IpConfigs { .. } | Self::IpConfig { .. } => {
                "virtualMachineScaleSets/virtualMachines/networkInterfaces/ipConfigurations"
            }
            Self::Pips { .. } | Self::VmPips { .. } | Self::Pip { .. } => {
                "virtualMachineScaleSets/virtualMachines/networkInterfaces/ipConfigurations/publicIPAddresses"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn r(path: &str) -> Target {
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        route(&segs)
    }

    const RG: &str = "/subscriptions/s/resourceGroups/rg/providers";

    #[test]
    fn top_level_items_lists_and_subscription_lists() {
        assert_eq!(
            r(&format!("{RG}/Microsoft.Network/LOADBALANCERS/lb")),
            Target::Res {
                sub: "s".into(),
                rg: "rg".into(),
                kind: Kind::Item(TopType::LoadBalancer, "lb".into())
            }
        );
        assert!(matches!(
            r(&format!("{RG}/Microsoft.Network/publicIPPrefixes")),
            Target::Res {
                kind: Kind::List(TopType::PublicIpPrefix),
                ..
            }
        ));
        assert!(matches!(
            r("/subscriptions/s/providers/Microsoft.Compute/virtualMachineScaleSets"),
            Target::SubscriptionList {
                top: TopType::ScaleSet,
                ..
            }
        ));
    }

    #[test]
    fn scale_set_network_reads() {
        let p = format!(
            "{RG}/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/0/networkInterfaces/n/ipConfigurations/c/publicIPAddresses/p"
        );
        assert!(matches!(
            r(&p),
            Target::Res {
                kind: Kind::VmssNetwork(VmssNetwork::Pip { .. }),
                ..
            }
        ));
        assert!(matches!(
            r(&format!(
                "{RG}/Microsoft.Compute/virtualMachineScaleSets/v/virtualMachines/0/instanceView"
            )),
            Target::Res {
                kind: Kind::ScaleSetVmInstanceView(..),
                ..
            }
        ));
    }

    #[test]
    fn unknown_types_and_namespaces_are_named() {
        assert_eq!(
            r(&format!("{RG}/Microsoft.Network/natGateways/g")),
            Target::UnknownType {
                namespace: "Microsoft.Network".into(),
                type_: "natGateways".into()
            }
        );
        assert_eq!(
            r(&format!(
                "{RG}/Microsoft.Compute/virtualMachineScaleSets/v/extensions/e"
            )),
            Target::UnknownType {
                namespace: "Microsoft.Compute".into(),
                type_: "virtualMachineScaleSets/extensions".into()
            }
        );
        assert!(matches!(
            r(&format!("{RG}/Microsoft.Storage/storageAccounts/a")),
            Target::UnknownNamespace { .. }
        ));
        assert_eq!(r("/foo/bar"), Target::NotFound);
    }
}
