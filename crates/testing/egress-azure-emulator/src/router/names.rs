//! Operation names as the Azure SDKs call them (`LoadBalancers.CreateOrUpdate`): the request
//! log, fault-rule filters and response-form settings use them.

use super::{Kind, Target, TopType, VmssNetwork};

fn verb(method: &str, get: &str, put: &str, patch: &str, delete: &str) -> String {
    match method {
        "GET" => get,
        "PUT" => put,
        "PATCH" => patch,
        "DELETE" => delete,
        "HEAD" => "CheckExistence",
        _ => "Unsupported",
    }
    .to_owned()
}

fn item(top: TopType, method: &str) -> String {
    // Network PATCH only updates tags; Compute PATCH is a partial update.
    let patch = match top {
        TopType::ScaleSet | TopType::VirtualMachine => "Update",
        _ => "UpdateTags",
    };
    format!(
        "{}.{}",
        top.op_group(),
        verb(method, "Get", "CreateOrUpdate", patch, "Delete")
    )
}

fn vmss_network(n: &VmssNetwork) -> &'static str {
    match n {
        VmssNetwork::Nics { .. } => "NetworkInterfaces.ListVirtualMachineScaleSetNetworkInterfaces",
        VmssNetwork::VmNics { .. } => {
            "NetworkInterfaces.ListVirtualMachineScaleSetVMNetworkInterfaces"
        }
        VmssNetwork::Nic { .. } => "NetworkInterfaces.GetVirtualMachineScaleSetNetworkInterface",
        VmssNetwork::IpConfigs { .. } => {
            "NetworkInterfaces.ListVirtualMachineScaleSetIpConfigurations"
        }
        VmssNetwork::IpConfig { .. } => {
            "NetworkInterfaces.GetVirtualMachineScaleSetIpConfiguration"
        }
        VmssNetwork::Pips { .. } => "PublicIPAddresses.ListVirtualMachineScaleSetPublicIPAddresses",
        VmssNetwork::VmPips { .. } => {
            "PublicIPAddresses.ListVirtualMachineScaleSetVMPublicIPAddresses"
        }
        VmssNetwork::Pip { .. } => "PublicIPAddresses.GetVirtualMachineScaleSetPublicIPAddress",
    }
}

impl Target {
    /// Operation name for a request with `method` (upper-case).
    pub fn operation(&self, method: &str) -> String {
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
            Target::ResourceGroups { .. } => "ResourceGroups.List".into(),
            Target::ResourceGroup { .. } => format!(
                "ResourceGroups.{}",
                verb(method, "Get", "CreateOrUpdate", "Update", "Delete")
            ),
            Target::SubscriptionList { top, .. } => format!("{}.ListAll", top.op_group()),
            Target::UnknownType { .. } | Target::UnknownNamespace { .. } | Target::NotFound => {
                "Unknown".into()
            }
            Target::Res { kind, .. } => match kind {
                Kind::List(top) => format!("{}.List", top.op_group()),
                Kind::Item(top, _) => item(*top, method),
                Kind::Subnets(_) => "Subnets.List".into(),
                Kind::Subnet(..) => format!(
                    "Subnets.{}",
                    verb(method, "Get", "CreateOrUpdate", "Update", "Delete")
                ),
                Kind::ManualUpgrade(_) => "VirtualMachineScaleSets.UpdateInstances".into(),
                Kind::ScaleSetVms(_) => "VirtualMachineScaleSetVMs.List".into(),
                Kind::ScaleSetVm(..) => format!(
                    "VirtualMachineScaleSetVMs.{}",
                    verb(method, "Get", "Update", "Unsupported", "Delete")
                ),
                Kind::ScaleSetVmInstanceView(..) => {
                    "VirtualMachineScaleSetVMs.GetInstanceView".into()
                }
                Kind::VirtualMachineInstanceView(_) => "VirtualMachines.InstanceView".into(),
                Kind::VmssNetwork(n) => vmss_network(n).into(),
            },
        }
    }
}
