//! Instance Metadata Service per simulated VM (`/imds/{computerName}/metadata/...`, or
//! `/metadata/...` with the VM found by the caller's address or an `x-emulator-vm` header), the
//! managed-identity token endpoint, and an Entra ID token endpoint, all answering as Azure does.

use crate::api_versions::IMDS_API_VERSIONS;
use crate::http::{Reply, Req};
use crate::ids::{ParsedId, key};
use crate::inventory::find_ip_configuration;
use crate::resources::render::pool_members;
use crate::state::State;
use crate::store::{Store, id_of};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Token handed out by the token endpoints (the emulator does not check tokens' contents).
pub const EMULATOR_TOKEN: &str = "emulator-access-token";

fn imds_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": message, "newest-versions": IMDS_API_VERSIONS.iter().rev().take(3).collect::<Vec<_>>()}),
    )
}

fn vm_types(store: &Store) -> impl Iterator<Item = &Value> {
    store
        .of_type("Microsoft.Compute/virtualMachineScaleSets/virtualMachines")
        .chain(store.of_type("Microsoft.Compute/virtualMachines"))
}

/// A VM or scale-set instance by computer name or VM name (case-insensitive).
pub(crate) fn find_vm<'a>(store: &'a Store, name: &str) -> Option<&'a Value> {
    vm_types(store).find(|vm| {
        vm.pointer("/properties/osProfile/computerName")
            .and_then(Value::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case(name))
            || vm["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

fn vm_nics<'a>(store: &'a Store, vm: &Value) -> Vec<&'a Value> {
    vm.pointer("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("id").and_then(Value::as_str))
        .filter_map(|id| store.get(id))
        .collect()
}

fn find_vm_by_ip<'a>(store: &'a Store, ip: &str) -> Option<&'a Value> {
    vm_types(store).find(|vm| {
        vm_nics(store, vm).iter().any(|nic| {
            nic.pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c.pointer("/properties/privateIPAddress")
                        .and_then(Value::as_str)
                        == Some(ip)
                })
        })
    })
}

pub(crate) fn handle(st: &State, req: &Req, vm: Option<&str>, rest: &[String]) -> Reply {
    if rest.first().map(String::as_str) == Some("identity") {
        return managed_identity_token(req);
    }
    if !req
        .header("metadata")
        .is_some_and(|m| m.eq_ignore_ascii_case("true"))
    {
        return imds_error(400, "Bad request. Required metadata header not specified");
    }
    match req.api_version() {
        None => {
            return imds_error(
                400,
                "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds",
            );
        }
        Some(v) if !IMDS_API_VERSIONS.contains(&v) => {
            return imds_error(
                400,
                "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds",
            );
        }
        Some(_) => {}
    }
    let named = vm
        .map(str::to_owned)
        .or_else(|| req.header("x-emulator-vm").map(str::to_owned));
    let found = match &named {
        Some(n) => find_vm(&st.store, n),
        None => req
            .peer
            .and_then(|p| find_vm_by_ip(&st.store, &p.ip().to_string())),
    };
    let Some(vm) = found else {
        return imds_error(
            404,
            &format!(
                "Not found. The emulator has no VM {}",
                named.map_or("with the caller's address".to_owned(), |n| format!(
                    "named '{n}'"
                ))
            ),
        );
    };
    let doc = match rest.first().map(String::as_str) {
        Some("instance") => instance(st, vm),
        Some("loadbalancer") => load_balancer(&st.store, vm),
        _ => {
            return imds_error(
                404,
                "Not found. The requested metadata category does not exist",
            );
        }
    };
    // `/metadata/instance/compute/tagsList` etc. select a sub-document.
    let mut cur = &doc;
    for seg in rest.iter().skip(1) {
        let next = cur.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                .map(|(_, v)| v)
        });
        match next {
            Some(n) => cur = n,
            None => {
                return imds_error(404, "Not found. The requested metadata path does not exist");
            }
        }
    }
    Reply::json(200, cur.clone())
}

fn instance(st: &State, vm: &Value) -> Value {
    let id = id_of(vm);
    let parsed = ParsedId::parse(id);
    let vmss = parsed
        .as_ref()
        .filter(|p| p.types.len() == 2)
        .and_then(|p| p.types.first())
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let tags: Vec<(String, String)> = vm
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let interfaces: Vec<Value> = vm_nics(&st.store, vm)
        .into_iter()
        .map(|nic| {
            let ipcs: Vec<&Value> = nic
                .pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            // IPv6 ipConfigurations are listed under `ipv6`, as IMDS does.
            let is_v6 = |c: &&&Value| {
                c.pointer("/properties/privateIPAddressVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case("IPv6"))
            };
            let ipv6: Vec<Value> = ipcs
                .iter()
                .filter(is_v6)
                .map(|c| json!({"privateIpAddress": c.pointer("/properties/privateIPAddress").and_then(Value::as_str).unwrap_or_default()}))
                .collect();
            let addresses: Vec<Value> = ipcs
                .iter()
                .filter(|c| !is_v6(c))
                .map(|c| {
                    let public = c
                        .pointer("/properties/publicIPAddress/id")
                        .and_then(Value::as_str)
                        .and_then(|p| st.store.get(p))
                        .and_then(|p| p.pointer("/properties/ipAddress"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    json!({
                        "privateIpAddress": c.pointer("/properties/privateIPAddress").and_then(Value::as_str).unwrap_or_default(),
                        "publicIpAddress": public,
                    })
                })
                .collect();
            let subnets: Vec<Value> = ipcs
                .first()
                .and_then(|c| c.pointer("/properties/subnet/id").and_then(Value::as_str))
                .and_then(|s| st.store.get(s))
                .and_then(|s| s.pointer("/properties/addressPrefix").and_then(Value::as_str))
                .and_then(|s| s.parse::<ipnet::Ipv4Net>().ok())
                .map(|n| vec![json!({"address": n.network().to_string(), "prefix": n.prefix_len().to_string()})])
                .unwrap_or_default();
            json!({
                "ipv4": {"ipAddress": addresses, "subnet": subnets},
                "ipv6": {"ipAddress": ipv6},
                "macAddress": nic.pointer("/properties/macAddress").and_then(Value::as_str).unwrap_or_default().replace('-', ""),
            })
        })
        .collect();
    json!({
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "location": vm["location"],
            "name": vm["name"],
            "osProfile": {"computerName": vm.pointer("/properties/osProfile/computerName")},
            "osType": "Linux",
            "resourceGroupName": parsed.as_ref().map(|p| p.resource_group.clone()).unwrap_or_default(),
            "resourceId": id,
            "subscriptionId": st.settings.subscription,
            "tags": tags.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(";"),
            "tagsList": tags.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "vmId": vm.pointer("/properties/vmId"),
            "vmScaleSetName": vmss,
            "vmSize": vm.pointer("/properties/hardwareProfile/vmSize").or_else(|| vm.pointer("/sku/name")),
            "zone": "",
        },
        "network": {"interface": interfaces},
    })
}

fn load_balancer(store: &Store, vm: &Value) -> Value {
    let mut public = Vec::new();
    let mut inbound = Vec::new();
    let nics = vm_nics(store, vm);
    let my_ipcs: Vec<String> = nics
        .iter()
        .flat_map(|n| {
            n.pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| key(id_of(c)))
        })
        .collect();
    for ipc_key in &my_ipcs {
        if let Some((_, ipc)) = find_ip_configuration(store, ipc_key)
            && let Some(pip) = ipc
                .pointer("/properties/publicIPAddress/id")
                .and_then(Value::as_str)
                .and_then(|p| store.get(p))
        {
            public.push(json!({
                "frontendIpAddress": pip.pointer("/properties/ipAddress"),
                "privateIpAddress": ipc.pointer("/properties/privateIPAddress"),
            }));
        }
    }
    for lb in store.of_type("Microsoft.Network/loadBalancers") {
        let props = &lb["properties"];
        for rule in props
            .get("loadBalancingRules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rp = &rule["properties"];
            let Some(pool) = rp.pointer("/backendAddressPool/id").and_then(Value::as_str) else {
                continue;
            };
            let members = pool_members(store, pool);
            let Some(member) = members.iter().find(|m| my_ipcs.contains(&key(m))) else {
                continue;
            };
            let fe_key = rp
                .pointer("/frontendIPConfiguration/id")
                .and_then(Value::as_str)
                .map(key)
                .unwrap_or_default();
            let fe_ip = props
                .get("frontendIPConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|f| key(id_of(f)) == fe_key)
                .and_then(|f| f.pointer("/properties/privateIPAddress"))
                .cloned();
            let private = find_ip_configuration(store, member)
                .and_then(|(_, c)| c.pointer("/properties/privateIPAddress").cloned());
            inbound.push(json!({
                "frontendIpAddress": fe_ip,
                "protocol": rp["protocol"].as_str().map(str::to_ascii_lowercase),
                "frontendPort": rp["frontendPort"],
                "backendPort": rp["backendPort"],
                "privateIpAddress": private,
            }));
        }
    }
    json!({"loadbalancer": {"publicIpAddresses": public, "inboundRules": inbound, "outboundRules": []}})
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `/metadata/identity/oauth2/token` (managed identity).
fn managed_identity_token(req: &Req) -> Reply {
    if !req
        .header("metadata")
        .is_some_and(|m| m.eq_ignore_ascii_case("true"))
    {
        return imds_error(400, "Bad request. Required metadata header not specified");
    }
    let resource = req.query.get("resource").cloned().unwrap_or_default();
    let exp = now() + 86_399;
    Reply::json(
        200,
        json!({
            "access_token": EMULATOR_TOKEN,
            "client_id": req.query.get("client_id").cloned().unwrap_or_default(),
            "expires_in": "86399",
            "expires_on": exp.to_string(),
            "ext_expires_in": "86399",
            "not_before": now().to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}

/// `/{tenant}/oauth2/v2.0/token` (client secret, certificate, workload identity).
pub(crate) fn token(st: &State, req: &Req, tenant: &str) -> Reply {
    if req.method != "POST" {
        return Reply::json(
            405,
            json!({"error": "invalid_request", "error_description": "The token endpoint accepts POST only."}),
        );
    }
    if !tenant.eq_ignore_ascii_case(&st.settings.tenant_id) {
        return Reply::json(
            400,
            json!({"error": "invalid_request", "error_description": format!("AADSTS90002: Tenant '{tenant}' not found. The emulator knows tenant '{}'.", st.settings.tenant_id)}),
        );
    }
    Reply::json(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": EMULATOR_TOKEN}),
    )
}
