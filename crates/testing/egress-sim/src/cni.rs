//! Running a CNI network configuration list as a container runtime does (CNI spec 1.0,
//! libcni's conventions): the first config file of the node's directory, each plugin executed
//! from `CNI_PATH` inside the node's namespace with the spec's environment, `prevResult`
//! chaining on ADD, reverse order on DEL, and the pod annotations passed as `runtimeConfig` to
//! plugins declaring the containerd capability.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Capability key containerd uses for pod annotations.
pub const ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";

/// A CNI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// No usable config in the directory.
    #[error("failed to find a CNI config in {dir}: {reason}")]
    NoConfig {
        /// Directory.
        dir: String,
        /// Why.
        reason: String,
    },
    /// A plugin failed.
    #[error("plugin {plugin} failed {command} (CNI code {code}): {msg}")]
    Plugin {
        /// Plugin type.
        plugin: String,
        /// ADD/DEL.
        command: String,
        /// CNI error code (0 when the plugin did not write one).
        code: u64,
        /// Message and details.
        msg: String,
    },
    /// A plugin could not be started.
    #[error("failed to run plugin {plugin}: {reason}")]
    Exec {
        /// Plugin type.
        plugin: String,
        /// Why.
        reason: String,
    },
}

/// Everything about one sandbox that the plugins are told.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Container (sandbox) ID.
    pub container_id: String,
    /// Pod network namespace path.
    pub netns_path: PathBuf,
    /// Interface name in the pod.
    pub ifname: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Pod annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Where and how plugins run.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Config directory of the node.
    pub conf_dir: PathBuf,
    /// Plugin directory.
    pub bin_dir: PathBuf,
    /// The node's namespace (plugins run in it).
    pub node_netns: String,
}

/// Loads the network config list the runtime would use: the lexicographically first
/// `.conflist` / `.conf` / `.json` file (a single `.conf` is wrapped into a list).
pub fn load_conflist(dir: &Path) -> Result<Value, CniError> {
    let no = |reason: String| CniError::NoConfig {
        dir: dir.display().to_string(),
        reason,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| no(e.to_string()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            !n.starts_with('.')
                && [".conflist", ".conf", ".json"]
                    .iter()
                    .any(|x| n.ends_with(x))
        })
        .collect();
    names.sort();
    let name = names.first().ok_or_else(|| no("no config file".into()))?;
    let text = std::fs::read_to_string(dir.join(name)).map_err(|e| no(format!("{name}: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| no(format!("{name}: {e}")))?;
    if v.get("plugins").is_some() {
        return Ok(v);
    }
    Ok(json!({"cniVersion": v["cniVersion"], "name": v["name"], "plugins": [v]}))
}

/// The stdin of one plugin: its entry plus the list's name and version, `prevResult` and
/// `runtimeConfig` for the capabilities it declares.
pub fn plugin_config(
    list: &Value,
    plugin: &Value,
    prev: Option<&Value>,
    sandbox: &Sandbox,
) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    if plugin.pointer(&format!(
        "/capabilities/{}",
        ANNOTATIONS_CAPABILITY.replace('/', "~1")
    )) == Some(&Value::Bool(true))
    {
        conf["runtimeConfig"] = json!({ ANNOTATIONS_CAPABILITY: sandbox.annotations });
    }
    conf
}

/// The environment of a plugin call.
pub fn plugin_env(command: &str, sandbox: &Sandbox, rt: &Runtime) -> Vec<(String, String)> {
    vec![
        ("CNI_COMMAND".into(), command.into()),
        ("CNI_CONTAINERID".into(), sandbox.container_id.clone()),
        ("CNI_NETNS".into(), sandbox.netns_path.display().to_string()),
        ("CNI_IFNAME".into(), sandbox.ifname.clone()),
        (
            "CNI_ARGS".into(),
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
                sandbox.pod_namespace, sandbox.pod_name, sandbox.container_id, sandbox.pod_uid
            ),
        ),
        ("CNI_PATH".into(), rt.bin_dir.display().to_string()),
    ]
}

fn exec(
    plugin: &str,
    command: &str,
    stdin: &Value,
    sandbox: &Sandbox,
    rt: &Runtime,
) -> Result<Value, CniError> {
    let exe = rt.bin_dir.join(plugin);
    let failed = |reason: String| CniError::Exec {
        plugin: plugin.to_string(),
        reason,
    };
    // nsenter changes only the network namespace (as a runtime on the node would run the
    // plugin); `ip netns exec` would also give it a private mount namespace.
    let mut child = Command::new("nsenter")
        .arg(format!(
            "--net={}",
            crate::netns::path(&rt.node_netns).display()
        ))
        .arg("--")
        .arg(&exe)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(plugin_env(command, sandbox, rt))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.to_string().as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if out.status.success() {
        return Ok(parsed.unwrap_or(Value::Null));
    }
    let (code, msg) = match &parsed {
        Some(v) if v.get("code").is_some() => (
            v["code"].as_u64().unwrap_or(0),
            format!(
                "{}{}",
                v["msg"].as_str().unwrap_or(""),
                v["details"]
                    .as_str()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        ),
        _ => (0, String::from_utf8_lossy(&out.stderr).trim().to_string()),
    };
    Err(CniError::Plugin {
        plugin: plugin.to_string(),
        command: command.to_string(),
        code,
        msg,
    })
}

/// ADD through the whole list; returns the final result.
pub fn add(list: &Value, sandbox: &Sandbox, rt: &Runtime) -> Result<Value, CniError> {
    let mut prev: Option<Value> = None;
    for plugin in list["plugins"].as_array().into_iter().flatten() {
        let ty = plugin["type"].as_str().unwrap_or_default();
        let conf = plugin_config(list, plugin, prev.as_ref(), sandbox);
        prev = Some(exec(ty, "ADD", &conf, sandbox, rt)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

/// DEL through the list in reverse; every plugin is called, the first error is returned.
pub fn del(
    list: &Value,
    sandbox: &Sandbox,
    rt: &Runtime,
    result: Option<&Value>,
) -> Result<(), CniError> {
    let mut first = None;
    for plugin in list["plugins"].as_array().into_iter().flatten().rev() {
        let ty = plugin["type"].as_str().unwrap_or_default();
        let conf = plugin_config(list, plugin, result, sandbox);
        if let Err(e) = exec(ty, "DEL", &conf, sandbox, rt) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The node's main config: `ptp` with host-local IPAM over the node's pod CIDR (state kept
/// in `ipam_dir`), no masquerade (the VNet edge does SNAT), as `10-simnet.conflist`. With a
/// pod IPv6 range the pods are dual-stack: one range set per family, default routes of both.
pub fn main_conflist(pod_cidr: &str, pod6_cidr: Option<&str>, ipam_dir: &Path) -> Value {
    let mut conf = single_stack_conflist(pod_cidr, ipam_dir);
    if let Some(v6) = pod6_cidr {
        let ipam = &mut conf["plugins"][0]["ipam"];
        ipam["ranges"] = json!([[{"subnet": pod_cidr}], [{"subnet": v6}]]);
        ipam["routes"] = json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]);
    }
    conf
}

fn single_stack_conflist(pod_cidr: &str, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "simnet",
        "plugins": [{
            "type": "ptp",
            "ipMasq": false,
            "mtu": 1500,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": pod_cidr}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": ipam_dir.display().to_string(),
            },
        }],
    })
}

/// The pod's IPv4 address on `ifname` from an ADD result.
pub fn pod_ipv4(result: &Value) -> Option<String> {
    pod_ip(result, false)
}

/// The pod's IPv6 address from an ADD result (dual-stack pods).
pub fn pod_ipv6(result: &Value) -> Option<String> {
    pod_ip(result, true)
}

fn pod_ip(result: &Value, v6: bool) -> Option<String> {
    result["ips"]
        .as_array()?
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .find(|a| a.contains(':') == v6)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn sandbox() -> Sandbox {
        Sandbox {
            container_id: "c1".into(),
            netns_path: "/run/netns/p".into(),
            ifname: "eth0".into(),
            pod_namespace: "demo".into(),
            pod_name: "web".into(),
            pod_uid: "u1".into(),
            annotations: [("a".to_string(), "b".to_string())].into(),
        }
    }

    #[test]
    fn chained_plugin_gets_prev_result_and_annotations_when_capable() {
        let list = json!({"cniVersion": "1.0.0", "name": "n", "plugins": [
            {"type": "ptp"},
            {"type": "kube-egress-cni", "capabilities": {ANNOTATIONS_CAPABILITY: true}}]});
        let prev = json!({"ips": [{"address": "10.244.0.2/24"}]});
        let first = plugin_config(&list, &list["plugins"][0], None, &sandbox());
        assert!(first.get("prevResult").is_none() && first.get("runtimeConfig").is_none());
        assert_eq!(first["name"], "n");
        let ours = plugin_config(&list, &list["plugins"][1], Some(&prev), &sandbox());
        assert_eq!(ours["prevResult"], prev);
        assert_eq!(ours["runtimeConfig"][ANNOTATIONS_CAPABILITY]["a"], "b");
        assert_eq!(pod_ipv4(&prev).as_deref(), Some("10.244.0.2"));
        assert_eq!(pod_ipv6(&prev), None);
        let dual = json!({"ips": [{"address": "10.244.0.2/24"}, {"address": "fd00:10:244::2/64"}]});
        assert_eq!(pod_ipv6(&dual).as_deref(), Some("fd00:10:244::2"));
        assert_eq!(pod_ipv4(&dual).as_deref(), Some("10.244.0.2"));
    }

    #[test]
    fn env_follows_the_spec() {
        let rt = Runtime {
            conf_dir: "/c".into(),
            bin_dir: "/b".into(),
            node_netns: "n".into(),
        };
        let env: BTreeMap<_, _> = plugin_env("ADD", &sandbox(), &rt).into_iter().collect();
        assert_eq!(env["CNI_COMMAND"], "ADD");
        assert_eq!(env["CNI_NETNS"], "/run/netns/p");
        assert!(
            env["CNI_ARGS"].contains("K8S_POD_NAME=web;")
                && env["CNI_ARGS"].contains("K8S_POD_UID=u1")
        );
    }

    #[test]
    fn first_config_file_wins_and_conf_is_wrapped() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            load_conflist(d.path())
                .unwrap_err()
                .to_string()
                .contains("no config file")
        );
        std::fs::write(
            d.path().join("10-a.conf"),
            r#"{"cniVersion":"1.0.0","name":"a","type":"ptp"}"#,
        )
        .unwrap();
        let v = load_conflist(d.path()).unwrap();
        assert_eq!(v["plugins"][0]["type"], "ptp");
        std::fs::write(
            d.path().join("01-b.conflist"),
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[]}"#,
        )
        .unwrap();
        assert_eq!(load_conflist(d.path()).unwrap()["name"], "b");
    }

    #[test]
    fn dual_stack_pods_get_a_range_and_a_default_route_per_family() {
        let dir = std::path::Path::new("/tmp/ipam");
        let single = main_conflist("10.244.0.0/24", None, dir);
        assert_eq!(
            single["plugins"][0]["ipam"]["ranges"],
            json!([[{"subnet": "10.244.0.0/24"}]])
        );
        let dual = main_conflist("10.244.0.0/24", Some("fd00:10:244::/64"), dir);
        let ipam = &dual["plugins"][0]["ipam"];
        assert_eq!(
            ipam["ranges"],
            json!([[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:10:244::/64"}]])
        );
        assert_eq!(
            ipam["routes"],
            json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
        );
        assert_eq!(ipam["dataDir"], single["plugins"][0]["ipam"]["dataDir"]);
    }
}
