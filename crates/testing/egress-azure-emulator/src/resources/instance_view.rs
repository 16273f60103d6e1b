//! Instance views of VMs and scale-set instances (`.../instanceView`, `$expand=instanceView`):
//! the fields a client reads to see that a VM runs — computer name, OS, provisioning and power
//! statuses — as Compute shapes them.

use crate::http::Req;
use serde_json::{Value, json};

/// The instance view of a VM or scale-set instance value.
pub(crate) fn of(vm: &Value) -> Value {
    let state = vm
        .pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .unwrap_or("Succeeded");
    json!({
        "computerName": vm.pointer("/properties/osProfile/computerName").cloned().unwrap_or(Value::Null),
        "osName": "ubuntu",
        "osVersion": "22.04",
        "platformUpdateDomain": 0,
        "platformFaultDomain": 0,
        "statuses": [
            {
                "code": format!("ProvisioningState/{}", state.to_ascii_lowercase()),
                "level": "Info",
                "displayStatus": format!("Provisioning {}", state.to_ascii_lowercase()),
            },
            {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
        ],
    })
}

/// True when the request asks for `$expand=instanceView` (case-insensitive, comma list).
pub(crate) fn expanded(req: &Req) -> bool {
    req.query.get("$expand").is_some_and(|e| {
        e.split(',')
            .any(|x| x.trim().eq_ignore_ascii_case("instanceView"))
    })
}
