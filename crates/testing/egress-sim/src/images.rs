//! Running the shipped components from the OCI archives `make images` builds (`egress-sim run
//! --images target/images`) instead of the host binaries, the way the Helm chart runs them:
//! the operator (host network, UID 65532, read-only, no capabilities), one cni-manager per
//! worker (the node's network namespace, root without capabilities), one gateway daemon per
//! gateway node (the node's namespace, privileged as the chart makes it for wireguard-go,
//! `/run/netns` shared) after the chart's `gateway-netns` init container, and the plugin
//! copied into the CNI bin directory by the chart's `install-plugin` init container.
//!
//! The command lines stay those of `components.rs`: [`ImageSet::wrap`] turns a [`Launch`]
//! into `podman run` of the component's image with the same arguments and environment, and
//! bind-mounts every path of the run directory they name, at the same path (as the chart's
//! hostPath volumes do). The API server and the Azure emulator stay host processes: they
//! stand in for Kubernetes and Azure, which no image replaces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::podman::{Container, Mount, Network, Podman, PodmanError, Security, Ulimits};
use crate::procs::Launch;

/// The images, by the component they hold (names of `docker/<name>.image` and the archives).
pub const OPERATOR: &str = "egress-operator";
/// The CNI manager.
pub const CNI_MANAGER: &str = "egress-cni-manager";
/// The gateway daemon.
pub const GATEWAY_DAEMON: &str = "egress-gateway-daemon";
/// The plugin carrier.
pub const CNI_PLUGIN: &str = "kube-egress-cni";
/// Not an image of its own: the gateway daemon's image run as the `lb-probe` keeper
/// (unprivileged, as the chart's `lb-probe` container).
pub const GATEWAY_LB_PROBE: &str = "egress-gateway-lb-probe";
/// Every image a run loads.
pub const ALL: [&str; 4] = [OPERATOR, CNI_MANAGER, GATEWAY_DAEMON, CNI_PLUGIN];

/// The chart's `install-plugin` init container script (charts/.../cni-manager.yaml; a test
/// compares it with the rendered chart).
pub const INSTALL_PLUGIN_SCRIPT: &str = "cp /kube-egress-cni /host/cni-bin/.kube-egress-cni.tmp
chmod 0755 /host/cni-bin/.kube-egress-cni.tmp
mv -f /host/cni-bin/.kube-egress-cni.tmp /host/cni-bin/kube-egress-cni
";

/// The chart's `gateway-netns` init container script for a gateway namespace name
/// (charts/.../gateway-daemon.yaml; a test compares it with the rendered chart).
pub fn gateway_netns_script(netns: &str) -> String {
    format!(
        "[ -e /run/netns/{netns} ] || ip netns add {netns}
ip netns exec {netns} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
"
    )
}

/// Using the images failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An archive is missing.
    #[error("missing image archive {0}: build the images with `make images`")]
    Missing(PathBuf),
    /// podman failed.
    #[error(transparent)]
    Podman(#[from] PodmanError),
    /// An init container failed.
    #[error("init container {name} failed: {source}")]
    Init {
        /// Which.
        name: String,
        /// Cause.
        #[source]
        source: PodmanError,
    },
}

/// The loaded images of one run and its podman storage (`<run dir>/podman`).
#[derive(Debug, Clone)]
pub struct ImageSet {
    podman: Podman,
    refs: BTreeMap<&'static str, String>,
    run_dir: PathBuf,
    prefix: String,
    limits: Ulimits,
}

/// The storage directory of a run's containers.
pub fn storage_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("podman")
}

impl ImageSet {
    /// Loads `<dir>/<image>.tar` of every image into the run's own podman storage.
    pub fn load(dir: &Path, run_dir: &Path, run_id: &str) -> Result<Self, ImageError> {
        let archives: Vec<(&'static str, PathBuf)> = ALL
            .iter()
            .map(|name| (*name, dir.join(format!("{name}.tar"))))
            .collect();
        if let Some((_, missing)) = archives.iter().find(|(_, p)| !p.is_file()) {
            return Err(ImageError::Missing(missing.clone()));
        }
        let podman = Podman::new(&storage_dir(run_dir));
        let mut refs = BTreeMap::new();
        for (name, archive) in archives {
            refs.insert(name, podman.load(&archive)?);
        }
        Ok(Self {
            podman,
            refs,
            run_dir: run_dir.to_path_buf(),
            prefix: format!("egress-sim-{run_id}"),
            limits: Ulimits::current(),
        })
    }

    /// The image reference a component runs from.
    pub fn image(&self, name: &str) -> String {
        self.refs.get(name).cloned().unwrap_or_else(|| name.into())
    }

    /// The podman of this run.
    pub fn podman(&self) -> &Podman {
        &self.podman
    }

    /// `launch` (a command line of `components.rs`) as `podman run` of `image`, in the
    /// launch's network namespace (or the host network), with the chart's security context
    /// of that component.
    pub fn wrap(&self, image: &'static str, launch: Launch) -> Launch {
        let network = match &launch.netns {
            Some(ns) => Network::Netns(crate::netns::path(ns)),
            None => Network::Host,
        };
        let mut mounts = run_mounts(&self.run_dir, &launch);
        let security = match image {
            // userspace WireGuard needs /dev/net/tun: the chart makes the daemon privileged.
            GATEWAY_DAEMON => {
                mounts.push(netns_mount("rslave"));
                Security::Privileged
            }
            // The image's user: 65532 for the operator, root for the manager.
            _ => Security::Restricted { user: None },
        };
        let image = if image == GATEWAY_LB_PROBE {
            GATEWAY_DAEMON
        } else {
            image
        };
        let container = Container {
            name: format!("{}-{}", self.prefix, launch.name),
            image: self.image(image),
            network,
            security,
            mounts,
            env: launch.env.clone(),
            entrypoint: vec![],
            args: launch.args.clone(),
        };
        Launch {
            name: launch.name,
            netns: None,
            program: "podman".into(),
            args: self.with_globals(container.run_args(self.limits)),
            env: vec![],
            combined_output: launch.combined_output,
        }
    }

    fn with_globals(&self, run: Vec<String>) -> Vec<String> {
        let mut a = self.podman.global_args();
        a.extend(run);
        a
    }

    fn run_init(&self, container: Container) -> Result<(), ImageError> {
        let name = container.name.clone();
        self.podman
            .run(&name, &container.run_args(self.limits))
            .map(|_| ())
            .map_err(|source| ImageError::Init { name, source })
    }

    /// The chart's `install-plugin` init container: copies the plugin from its image into
    /// `cni_bin` (root, read-only root filesystem, no capabilities).
    pub fn install_plugin(&self, cni_bin: &Path) -> Result<(), ImageError> {
        self.run_init(Container {
            name: format!("{}-install-plugin", self.prefix),
            image: self.image(CNI_PLUGIN),
            network: Network::Host,
            security: Security::Restricted { user: Some("0:0") },
            mounts: vec![Mount {
                host: cni_bin.to_path_buf(),
                container: "/host/cni-bin".into(),
                options: String::new(),
            }],
            env: vec![],
            entrypoint: vec!["/bin/sh".into(), "-ec".into(), INSTALL_PLUGIN_SCRIPT.into()],
            args: vec![],
        })
    }

    /// The chart's `gateway-netns` init container on a gateway node: creates the gateway
    /// namespace `gateway_ns` with forwarding on, from the daemon's image (privileged,
    /// `/run/netns` with bidirectional propagation, the node's network namespace).
    pub fn init_gateway_netns(&self, node_ns: &str, gateway_ns: &str) -> Result<(), ImageError> {
        self.run_init(Container {
            name: format!("{}-gateway-netns-{node_ns}", self.prefix),
            image: self.image(GATEWAY_DAEMON),
            network: Network::Netns(crate::netns::path(node_ns)),
            security: Security::Privileged,
            mounts: vec![netns_mount("rshared")],
            env: vec![],
            entrypoint: vec![
                "/bin/sh".into(),
                "-ec".into(),
                gateway_netns_script(gateway_ns),
            ],
            args: vec![],
        })
    }
}

fn netns_mount(propagation: &str) -> Mount {
    Mount {
        host: "/run/netns".into(),
        container: "/run/netns".into(),
        options: propagation.into(),
    }
}

/// Bind mounts for every path under `run_dir` that the launch's arguments or environment
/// name, at the same path: an existing file or directory itself, otherwise (a socket the
/// component will create) its parent directory, created here. Nested ones are covered by the
/// outer mount.
pub fn run_mounts(run_dir: &Path, launch: &Launch) -> Vec<Mount> {
    // Paths come as separate arguments, as the value of `--flag=value` (the chart's form) or
    // as environment values.
    let named = launch
        .args
        .iter()
        .map(
            |a| match a.strip_prefix("--").and_then(|f| f.split_once('=')) {
                Some((_, value)) => value,
                None => a.as_str(),
            },
        )
        .chain(launch.env.iter().map(|(_, v)| v.as_str()))
        .map(Path::new)
        .filter(|p| p.is_absolute() && p.starts_with(run_dir) && *p != run_dir);
    let mut paths: Vec<PathBuf> = named
        .map(|p| {
            if p.exists() {
                p.to_path_buf()
            } else {
                let parent = p.parent().unwrap_or(run_dir).to_path_buf();
                // A failure surfaces as podman's own "no such file or directory".
                let _ = std::fs::create_dir_all(&parent);
                parent
            }
        })
        .collect();
    paths.sort();
    paths.dedup();
    let outer: Vec<PathBuf> = paths
        .iter()
        .filter(|p| !paths.iter().any(|q| q != *p && p.starts_with(q)))
        .cloned()
        .collect();
    outer
        .into_iter()
        .map(|p| Mount {
            options: if p.is_file() {
                "ro".into()
            } else {
                String::new()
            },
            host: p.clone(),
            container: p,
        })
        .collect()
}

/// `launch` unchanged without images, else [`ImageSet::wrap`].
pub fn wrap(images: Option<&ImageSet>, image: &'static str, launch: Launch) -> Launch {
    match images {
        Some(set) => set.wrap(image, launch),
        None => launch,
    }
}

/// Removes a run's containers and podman storage (teardown, also after a crash).
pub fn destroy(run_dir: &Path) -> Vec<String> {
    Podman::new(&storage_dir(run_dir)).destroy()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn mounts_cover_named_run_paths_once_and_create_socket_parents() {
        let run = tempfile::tempdir().unwrap();
        let r = run.path();
        std::fs::write(r.join("kubeconfig"), "x").unwrap();
        std::fs::create_dir_all(r.join("nodes/a/net.d")).unwrap();
        std::fs::create_dir_all(r.join("logs")).unwrap();
        let launch = Launch {
            name: "m".into(),
            netns: None,
            program: "x".into(),
            // Both forms: the chart's `--flag=value` (components.rs) and `--flag value`.
            args: vec![
                format!(
                    "--socket-path={}",
                    r.join("nodes/a/sock/cni.sock").display()
                ),
                "--cni-conf-dir".into(),
                r.join("nodes/a/net.d").display().to_string(),
                "--http-addr".into(),
                "127.0.0.1:8080".into(),
                "--other".into(),
                "/etc/hosts".into(),
            ],
            env: vec![(
                "KUBECONFIG".into(),
                r.join("kubeconfig").display().to_string(),
            )],
            combined_output: true,
        };
        let m = run_mounts(r, &launch);
        let hosts: Vec<&Path> = m.iter().map(|m| m.host.as_path()).collect();
        assert_eq!(
            hosts,
            [
                r.join("kubeconfig").as_path(),
                r.join("nodes/a/net.d").as_path(),
                r.join("nodes/a/sock").as_path()
            ]
        );
        assert!(r.join("nodes/a/sock").is_dir(), "socket directory created");
        assert!(m.iter().all(|m| m.host == m.container));
        assert_eq!(m[0].options, "ro");
        assert_eq!(m[1].options, "");
    }

    #[test]
    fn nested_paths_are_covered_by_the_outer_mount() {
        let run = tempfile::tempdir().unwrap();
        let r = run.path();
        std::fs::create_dir_all(r.join("nodes/a/net.d")).unwrap();
        let launch = Launch {
            name: "m".into(),
            netns: None,
            program: "x".into(),
            args: vec![
                r.join("nodes").display().to_string(),
                r.join("nodes/a/net.d").display().to_string(),
            ],
            env: vec![],
            combined_output: true,
        };
        let m = run_mounts(r, &launch);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].host, r.join("nodes"));
    }

    #[test]
    fn the_gateway_init_script_names_the_namespace_everywhere() {
        let s = gateway_netns_script("r1-gw-0-gw");
        assert_eq!(s.matches("r1-gw-0-gw").count(), 3, "{s}");
    }
}
