//! Pure construction of the chained conflist: which file in the CNI config directory is the
//! main network config, and that config with our plugin inserted right after the main plugin
//! (before portmap, bandwidth and other meta plugins). No file-system access here.

use serde_json::{Map, Value, json};

use egress_api::constants::{CNI_CONFLIST_FILE, CNI_TYPE};

/// Capability key under which containerd passes the pod's annotations to a plugin in
/// `runtimeConfig`; with it the plugin needs no manager call for pods without the annotation.
pub const POD_ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";

/// Why no chained conflist could be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConflistError {
    /// The directory holds no other network config.
    #[error(
        "failed to find a main CNI config (*.conflist, *.conf, *.json) besides {CNI_CONFLIST_FILE}"
    )]
    MainNotFound,
    /// The main config is not valid JSON.
    #[error("failed to parse main CNI config {file}: {reason}")]
    Parse {
        /// File name.
        file: String,
        /// Parser message.
        reason: String,
    },
    /// The main config is JSON but not a usable network config.
    #[error("failed to use main CNI config {file}: {reason}")]
    Invalid {
        /// File name.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// WireGuard implementation the plugin uses for pod tunnels (`wireguardBackend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WireguardBackend {
    /// Kernel WireGuard (production nodes).
    #[default]
    Kernel,
    /// wireguard-go, for nodes without the kernel module.
    Userspace,
}

impl WireguardBackend {
    /// The value of `wireguardBackend` in the plugin config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
        }
    }
}

/// Settings of our entry in the conflist.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEntry {
    /// Socket the plugin talks to.
    pub socket_path: String,
    /// Node exception CIDRs (always bypass the tunnel with `staticEgressGateway`).
    pub excluded_cidrs: Vec<ipnet::IpNet>,
    /// How long ADD waits for the first WireGuard handshake.
    pub handshake_timeout_seconds: u64,
    /// WireGuard implementation of the pod tunnels.
    pub wireguard_backend: WireguardBackend,
    /// Where the plugin writes its per-sandbox tunnel records (`stateDir`): beside the socket,
    /// so the manager reads exactly the records of its node's plugin.
    pub state_dir: String,
}

impl PluginEntry {
    /// The JSON object inserted into the plugin list.
    pub fn to_json(&self) -> Value {
        json!({
            "type": CNI_TYPE,
            "socketPath": self.socket_path,
            "excludedCIDRs": self.excluded_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "handshakeTimeoutSeconds": self.handshake_timeout_seconds,
            "wireguardBackend": self.wireguard_backend.as_str(),
            "stateDir": self.state_dir,
            "capabilities": { POD_ANNOTATIONS_CAPABILITY: true },
        })
    }
}

/// Whether a file name can be a network config the runtime would load.
fn is_config_name(name: &str) -> bool {
    [".conflist", ".conf", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The main config: the lexicographically first config file other than ours (the order the
/// container runtime itself uses). Dot-files and our temporary file are ignored.
pub fn pick_main<'a>(file_names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    file_names
        .into_iter()
        .filter(|n| is_config_name(n) && *n != CNI_CONFLIST_FILE && !n.starts_with('.'))
        .min()
}

/// The main config with our plugin chained right after the main plugin. A `.conflist`
/// keeps its top-level fields and other plugins; a single-plugin `.conf`/`.json` is wrapped
/// into a list. Any earlier entry of ours is replaced, so the result is idempotent.
pub fn chain(file: &str, content: &str, entry: &PluginEntry) -> Result<Value, ConflistError> {
    let invalid = |reason: &str| ConflistError::Invalid {
        file: file.to_string(),
        reason: reason.to_string(),
    };
    let parsed: Value = serde_json::from_str(content).map_err(|e| ConflistError::Parse {
        file: file.to_string(),
        reason: e.to_string(),
    })?;
    let Value::Object(mut top) = parsed else {
        return Err(invalid("not a JSON object"));
    };
    let our = entry.to_json();
    if let Some(plugins) = top.get_mut("plugins") {
        let Value::Array(list) = plugins else {
            return Err(invalid("\"plugins\" is not a list"));
        };
        list.retain(|p| p.get("type").and_then(Value::as_str) != Some(CNI_TYPE));
        if list.is_empty() {
            return Err(invalid("\"plugins\" has no main plugin"));
        }
        list.insert(1, our);
        return Ok(Value::Object(top));
    }
    if top.get("type").and_then(Value::as_str).is_none() {
        return Err(invalid("neither \"plugins\" nor \"type\" is set"));
    }
    let mut list = Map::new();
    for key in ["cniVersion", "name"] {
        if let Some(v) = top.get(key) {
            list.insert(key.to_string(), v.clone());
        }
    }
    // A bare conf sets its own cniVersion; dropping it would make the runtime guess.
    top.remove("name");
    list.insert(
        "plugins".into(),
        Value::Array(vec![Value::Object(top), our]),
    );
    Ok(Value::Object(list))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn entry() -> PluginEntry {
        PluginEntry {
            socket_path: "/run/egress-gateway/cni.sock".into(),
            excluded_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
            handshake_timeout_seconds: 10,
            wireguard_backend: WireguardBackend::Kernel,
            state_dir: "/run/egress-gateway/pods".into(),
        }
    }

    fn types(v: &Value) -> Vec<&str> {
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn main_config_is_the_first_config_file_but_never_ours() {
        let names = [
            "99-loopback.conf",
            CNI_CONFLIST_FILE,
            "10-azure.conflist",
            "README",
            ".01-egressgateway.conflist.tmp",
            "20-calico.json",
        ];
        assert_eq!(pick_main(names), Some("10-azure.conflist"));
        assert_eq!(pick_main([CNI_CONFLIST_FILE, "notes.txt"]), None);
    }

    #[test]
    fn conflist_gets_our_plugin_right_after_the_main_plugin() {
        let main = r#"{"cniVersion":"1.0.0","name":"k8s","plugins":[
            {"type":"ptp","ipam":{"type":"host-local"}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#;
        let out = chain("10-k8s.conflist", main, &entry()).unwrap();
        assert_eq!(types(&out), ["ptp", CNI_TYPE, "portmap"]);
        assert_eq!(out["name"], "k8s");
        assert_eq!(out["cniVersion"], "1.0.0");
        let ours = &out["plugins"][1];
        assert_eq!(ours["socketPath"], "/run/egress-gateway/cni.sock");
        assert_eq!(ours["excludedCIDRs"][0], "169.254.169.254/32");
        assert_eq!(ours["capabilities"][POD_ANNOTATIONS_CAPABILITY], true);
        assert_eq!(ours["stateDir"], "/run/egress-gateway/pods");
        assert_eq!(out["plugins"][0]["ipam"]["type"], "host-local");
    }

    #[test]
    fn chaining_twice_keeps_one_entry_with_the_new_settings() {
        let main = r#"{"cniVersion":"0.4.0","name":"k8s","plugins":[{"type":"bridge"}]}"#;
        let once = chain("a.conflist", main, &entry()).unwrap();
        let mut changed = entry();
        changed.handshake_timeout_seconds = 3;
        let twice = chain("a.conflist", &once.to_string(), &changed).unwrap();
        assert_eq!(types(&twice), ["bridge", CNI_TYPE]);
        assert_eq!(twice["plugins"][1]["handshakeTimeoutSeconds"], 3);
    }

    #[test]
    fn wireguard_backend_is_written_for_the_plugin() {
        let main = r#"{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"ptp"}]}"#;
        let kernel = chain("a.conflist", main, &entry()).unwrap();
        assert_eq!(kernel["plugins"][1]["wireguardBackend"], "kernel");
        let userspace = PluginEntry {
            wireguard_backend: WireguardBackend::Userspace,
            ..entry()
        };
        let out = chain("a.conflist", &kernel.to_string(), &userspace).unwrap();
        assert_eq!(out["plugins"][1]["wireguardBackend"], "userspace");
        assert_eq!(types(&out), ["ptp", CNI_TYPE]);
    }

    #[test]
    fn single_conf_is_wrapped_into_a_list() {
        let main =
            r#"{"cniVersion":"0.4.0","name":"azure","type":"azure-vnet","mode":"transparent"}"#;
        let out = chain("10-azure.conf", main, &entry()).unwrap();
        assert_eq!(out["name"], "azure");
        assert_eq!(out["cniVersion"], "0.4.0");
        assert_eq!(types(&out), ["azure-vnet", CNI_TYPE]);
        assert_eq!(out["plugins"][0]["mode"], "transparent");
        assert!(out["plugins"][0].get("name").is_none());
    }

    #[test]
    fn unusable_main_configs_give_specific_errors() {
        let cases = [
            ("{not json", "failed to parse main CNI config x.conf"),
            ("[1,2]", "not a JSON object"),
            (r#"{"plugins":{}}"#, "\"plugins\" is not a list"),
            (r#"{"plugins":[]}"#, "has no main plugin"),
            (
                &format!(r#"{{"plugins":[{{"type":"{CNI_TYPE}"}}]}}"#),
                "has no main plugin",
            ),
            (r#"{"name":"x"}"#, "neither \"plugins\" nor \"type\""),
        ];
        for (content, want) in cases {
            let err = chain("x.conf", content, &entry()).unwrap_err().to_string();
            assert!(err.contains(want), "{content}: {err}");
        }
    }
}
