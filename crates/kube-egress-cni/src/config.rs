//! Parsing of the plugin's inputs beyond what rscni already checks: our fields in the network
//! config, `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`) and the pod
//! annotations containerd passes in `runtimeConfig`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use rscni_plugin::types::NetConf;
use serde::Deserialize;

use egress_cni_proto::PodRef;

/// Key of the annotations map in `runtimeConfig` (containerd capability).
pub const POD_ANNOTATIONS_KEY: &str = "io.kubernetes.cri.pod-annotations";
/// The gateway annotation (same value as `egress_api::constants::POD_ANNOTATION`; this crate
/// must not link the kube-dependent API crate).
pub const POD_ANNOTATION: &str = "kubernetes.azure.com/static-gateway-configuration";
/// Default handshake timeout at ADD.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default tunnel MTU: 1500 minus the 80 bytes of WireGuard over IPv6 (60 over IPv4).
pub const DEFAULT_MTU: u32 = 1420;
/// Default directory of per-sandbox state files.
pub use egress_pod_tunnel::DEFAULT_STATE_DIR;

/// WireGuard implementation used for the pod tunnel (shared with the manager, which reads
/// it back from the tunnel record).
pub use egress_cni_proto::Backend;

/// Our fields of the plugin entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    socket_path: Option<PathBuf>,
    #[serde(default, rename = "excludedCIDRs")]
    excluded_cidrs: Vec<String>,
    #[serde(default)]
    handshake_timeout_seconds: Option<f64>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    wireguard_backend: Option<Backend>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    manager_timeout_seconds: Option<f64>,
}

/// The plugin's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// Manager socket.
    pub socket_path: PathBuf,
    /// Node exception CIDRs (bypass the tunnel in `staticEgressGateway` mode).
    pub excluded_cidrs: Vec<IpNet>,
    /// How long ADD waits for the first handshake.
    pub handshake_timeout: Duration,
    /// Tunnel MTU.
    pub mtu: u32,
    /// WireGuard implementation.
    pub backend: Backend,
    /// Per-sandbox state files.
    pub state_dir: PathBuf,
    /// Timeout of one manager call.
    pub manager_timeout: Duration,
}

/// Invalid configuration; mapped to CNI error 7.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A field of ours has a bad value or is unknown.
    #[error("invalid kube-egress-cni config: {0}")]
    Field(String),
    /// `excludedCIDRs` entry does not parse.
    #[error("invalid kube-egress-cni config: excludedCIDRs[{index}] {value:?} is not a CIDR")]
    Cidr {
        /// Position.
        index: usize,
        /// Value.
        value: String,
    },
    /// A CNI_ARGS entry is malformed.
    #[error("invalid CNI_ARGS: {0:?} is not KEY=VALUE")]
    Args(String),
}

fn seconds(field: &str, v: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 600.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(ConfigError::Field(format!(
            "{field} must be a number of seconds in (0, 600], got {s}"
        ))),
    }
}

/// Keys of a plugin entry that the CNI spec or rscni own (everything else must be ours).
const SPEC_KEYS: &[&str] = &["cniVersions", "disableCheck", "disableGC", "capabilities"];

impl PluginConfig {
    /// Reads our fields from the network config.
    pub fn from_netconf(conf: &NetConf) -> Result<Self, ConfigError> {
        let ours: serde_json::Map<String, serde_json::Value> = conf
            .custom
            .iter()
            .filter(|(k, _)| !SPEC_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let raw: RawConfig = serde_json::from_value(serde_json::Value::Object(ours))
            .map_err(|e| ConfigError::Field(e.to_string()))?;
        let mut excluded_cidrs = Vec::new();
        for (index, value) in raw.excluded_cidrs.iter().enumerate() {
            excluded_cidrs.push(value.parse().map_err(|_| ConfigError::Cidr {
                index,
                value: value.clone(),
            })?);
        }
        let mtu = raw.mtu.unwrap_or(DEFAULT_MTU);
        if !(1280..=9000).contains(&mtu) {
            return Err(ConfigError::Field(format!(
                "mtu must be 1280..=9000, got {mtu}"
            )));
        }
        Ok(Self {
            socket_path: raw
                .socket_path
                .unwrap_or_else(|| PathBuf::from(egress_cni_proto::DEFAULT_SOCKET_PATH)),
            excluded_cidrs,
            handshake_timeout: seconds(
                "handshakeTimeoutSeconds",
                raw.handshake_timeout_seconds,
                DEFAULT_HANDSHAKE_TIMEOUT,
            )?,
            mtu,
            backend: raw.wireguard_backend.unwrap_or_default(),
            state_dir: raw
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            manager_timeout: seconds(
                "managerTimeoutSeconds",
                raw.manager_timeout_seconds,
                Duration::from_secs(15),
            )?,
        })
    }
}

/// The pod named in `CNI_ARGS`, or `None` when the runtime is not Kubernetes.
pub fn pod_from_cni_args(args: Option<&str>) -> Result<Option<PodRef>, ConfigError> {
    let mut map = HashMap::new();
    for part in args.unwrap_or("").split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| ConfigError::Args(part.to_string()))?;
        map.insert(k, v);
    }
    let get = |k| map.get(k).filter(|v| !v.is_empty()).map(|v| v.to_string());
    Ok(match (get("K8S_POD_NAMESPACE"), get("K8S_POD_NAME")) {
        (Some(namespace), Some(name)) => Some(PodRef {
            namespace,
            name,
            uid: get("K8S_POD_UID"),
        }),
        _ => None,
    })
}

/// What the runtime told us about the annotation: `Some(None)` = annotations passed and the
/// pod has none; `None` = the runtime passed no annotations (ask the manager).
pub fn gateway_from_runtime_config(conf: &NetConf) -> Option<Option<String>> {
    let annotations = conf
        .runtime_config
        .as_ref()?
        .custom
        .get(POD_ANNOTATIONS_KEY)?
        .as_object()?;
    Some(
        annotations
            .get(POD_ANNOTATION)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn conf(json: &str) -> NetConf {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn fields_are_read_with_defaults() {
        let c = PluginConfig::from_netconf(&conf(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kube-egress-cni"}"#,
        ))
        .unwrap();
        assert_eq!(
            c.socket_path,
            PathBuf::from(egress_cni_proto::DEFAULT_SOCKET_PATH)
        );
        assert_eq!(c.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(c.mtu, DEFAULT_MTU);
        assert_eq!(c.backend, Backend::Kernel);
        let c = PluginConfig::from_netconf(&conf(
            r#"{"cniVersion":"1.0.0","name":"n","type":"kube-egress-cni","socketPath":"/tmp/s.sock",
               "excludedCIDRs":["169.254.169.254/32"],"handshakeTimeoutSeconds":2.5,"mtu":1380,
               "wireguardBackend":"userspace","capabilities":{"io.kubernetes.cri.pod-annotations":true}}"#,
        ))
        .unwrap();
        assert_eq!(c.socket_path, PathBuf::from("/tmp/s.sock"));
        assert_eq!(
            c.excluded_cidrs,
            vec!["169.254.169.254/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(c.handshake_timeout, Duration::from_millis(2500));
        assert_eq!((c.mtu, c.backend), (1380, Backend::Userspace));
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#""excludedCIDRs":["10.0.0.0/8","nope"]"#,
                "excludedCIDRs[1] \"nope\" is not a CIDR",
            ),
            (
                r#""handshakeTimeoutSeconds":0"#,
                "handshakeTimeoutSeconds must be",
            ),
            (r#""mtu":100"#, "mtu must be 1280..=9000"),
            (r#""wireguardBackend":"ebpf""#, "unknown variant `ebpf`"),
            (r#""socketpath":"/x""#, "unknown field `socketpath`"),
        ];
        for (field, want) in cases {
            let json =
                format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"kube-egress-cni",{field}}}"#);
            let err = PluginConfig::from_netconf(&conf(&json))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{field}: {err}");
        }
    }

    #[test]
    fn cni_args_name_the_pod() {
        let p = pod_from_cni_args(Some("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str(), p.uid.as_deref()),
            ("ns1", "web-0", Some("u1"))
        );
        assert_eq!(pod_from_cni_args(None).unwrap(), None);
        assert_eq!(pod_from_cni_args(Some("K8S_POD_NAME=x")).unwrap(), None);
        assert!(
            pod_from_cni_args(Some("K8S_POD_NAME"))
                .unwrap_err()
                .to_string()
                .contains("not KEY=VALUE")
        );
    }

    #[test]
    fn runtime_config_annotations_decide_without_the_manager() {
        let with = conf(&format!(
            r#"{{"cniVersion":"1.0.0","name":"n","type":"t","runtimeConfig":{{"{POD_ANNOTATIONS_KEY}":{{"{POD_ANNOTATION}":"sgc1","x":"y"}}}}}}"#
        ));
        assert_eq!(
            gateway_from_runtime_config(&with),
            Some(Some("sgc1".into()))
        );
        let without = conf(&format!(
            r#"{{"cniVersion":"1.0.0","name":"n","type":"t","runtimeConfig":{{"{POD_ANNOTATIONS_KEY}":{{"x":"y"}}}}}}"#
        ));
        assert_eq!(gateway_from_runtime_config(&without), Some(None));
        let unknown = conf(r#"{"cniVersion":"1.0.0","name":"n","type":"t"}"#);
        assert_eq!(gateway_from_runtime_config(&unknown), None);
    }
}
