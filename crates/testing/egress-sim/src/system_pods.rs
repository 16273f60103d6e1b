//! Pods in `kube-egress-gateway-system` for the components the simulator runs as processes,
//! named and labelled as the chart's Deployment and DaemonSets name theirs
//! (`kube-egress-gateway-operator-<hash>-<5>`, `kube-egress-gateway-gateway-daemon-<5>` per
//! gateway node, `kube-egress-gateway-cni-manager-<5>` per worker), so `kubectl get pods -n
//! kube-egress-gateway-system` looks like a real install and `kubectl logs` shows each
//! component's log. Their status follows the process: Running and ready while it lives,
//! terminated with its restart count once it was stopped (a refresher reads the run's process
//! records every 2 s). `kubectl exec` into a daemon or manager runs in its node's namespace
//! (they are hostNetwork pods); the operator runs in the simulator's own namespace, so exec
//! into it is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::k8s::{SYSTEM_NAMESPACE, now};
use crate::kubelet_api::{Locator, PodHandle};
use crate::state::{self, StateFile};

/// The chart's release name prefix of every object.
const RELEASE: &str = "kube-egress-gateway";

/// One component process shown as a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The process name in the run's records (`egress-cni-manager-<node>`).
    pub process: String,
    /// `operator`, `gateway-daemon` or `cni-manager` (the chart's component label).
    pub role: &'static str,
    /// The node it is shown on.
    pub node: String,
    /// The node's primary IP (hostNetwork pods have it as pod IP).
    pub host_ip: String,
    /// The node's network namespace, where exec runs (`None`: the operator).
    pub netns: Option<String>,
}

impl Component {
    fn container(&self) -> (&'static str, &'static str) {
        match self.role {
            "operator" => ("operator", "egress-operator"),
            "gateway-daemon" => ("daemon", "egress-gateway-daemon"),
            _ => ("manager", "egress-cni-manager"),
        }
    }

    /// The pod name (random suffixes like a controller's).
    fn pod_name(&self) -> String {
        let suffix = |n: usize| -> String {
            const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            (0..n)
                .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
                .collect()
        };
        match self.role {
            "operator" => format!("{RELEASE}-operator-{}-{}", suffix(10), suffix(5)),
            role => format!("{RELEASE}-{role}-{}", suffix(5)),
        }
    }

    /// The Pod object.
    pub fn pod(&self, name: &str) -> Value {
        let (container, image) = self.container();
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": SYSTEM_NAMESPACE,
                "labels": {"app.kubernetes.io/name": RELEASE, "app.kubernetes.io/instance": RELEASE,
                           "app.kubernetes.io/component": self.role},
                "annotations": {COMPONENT_ANNOTATION: self.process},
            },
            "spec": {
                "nodeName": self.node,
                "hostNetwork": self.role != "operator",
                "containers": [{"name": container, "image": format!("{image}:sim")}],
            },
        })
    }
}

/// Marks a pod as a simulator-run component: the kubelet leaves it alone.
pub const COMPONENT_ANNOTATION: &str = "egress-sim.kube-egress-gateway/process";

/// What the refresher last wrote per pod: (alive, restarts).
type Shown = BTreeMap<String, (bool, usize)>;

/// The component pods of a run.
#[derive(Debug, Clone)]
pub struct SystemPods {
    pods: Arc<Mutex<BTreeMap<String, (Component, PathBuf)>>>,
}

/// The status of a component pod: running since `since`, or terminated.
pub fn status(c: &Component, alive: bool, restarts: usize, since: &str) -> Value {
    let (container, image) = c.container();
    let state = if alive {
        json!({"running": {"startedAt": since}})
    } else {
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": since}})
    };
    let flag = if alive { "True" } else { "False" };
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": since});
    json!({"status": {
        "phase": if alive { "Running" } else { "Failed" },
        "hostIP": c.host_ip, "podIP": c.host_ip, "podIPs": [{"ip": c.host_ip}],
        "startTime": since,
        "conditions": [cond("Initialized", "True"), cond("Ready", flag), cond("ContainersReady", flag),
                       cond("PodScheduled", "True")],
        "containerStatuses": [{"name": container, "image": format!("{image}:sim"), "imageID": "",
            "ready": alive, "started": alive, "restartCount": restarts, "state": state}],
    }})
}

impl SystemPods {
    /// Creates the pods (status included) of `components`; their logs are in `log_dir`.
    pub async fn create(
        client: &Client,
        components: &[Component],
        log_dir: &Path,
    ) -> Result<Self, kube::Error> {
        let api: Api<Pod> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
        let mut pods = BTreeMap::new();
        for c in components {
            let name = c.pod_name();
            let pod: Pod = serde_json::from_value(c.pod(&name)).map_err(kube::Error::SerdeError)?;
            api.create(&PostParams::default(), &pod).await?;
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(status(c, true, 0, &now())),
            )
            .await?;
            pods.insert(
                name,
                (c.clone(), log_dir.join(format!("{}.log", c.process))),
            );
        }
        Ok(Self {
            pods: Arc::new(Mutex::new(pods)),
        })
    }

    /// Finds a component pod for the kubelet API.
    pub fn locator(&self) -> Locator {
        let pods = self.pods.clone();
        Arc::new(move |ns: &str, name: &str| {
            if ns != SYSTEM_NAMESPACE {
                return None;
            }
            let pods = pods.lock().ok()?;
            let (c, log) = pods.get(name)?;
            Some(PodHandle {
                netns: c.netns.clone(),
                log: log.clone(),
                hosts: None,
                no_exec: c.netns.is_none().then(|| {
                    "the simulated operator runs in the simulator's own network namespace, not in a node's: exec is not available for it (kubectl logs is)".to_string()
                }),
            })
        })
    }

    /// Keeps the pods' status in step with the processes until the task is dropped.
    pub async fn refresh(self, client: Client, state: Arc<Mutex<StateFile>>) {
        let api: Api<Pod> = Api::namespaced(client, SYSTEM_NAMESPACE);
        let mut shown: Shown = BTreeMap::new();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let records = state
                .lock()
                .map(|s| s.state().processes.clone())
                .unwrap_or_default();
            let pods: Vec<(String, Component)> = self
                .pods
                .lock()
                .map(|p| p.iter().map(|(n, (c, _))| (n.clone(), c.clone())).collect())
                .unwrap_or_default();
            for (name, c) in pods {
                let mine: Vec<_> = records.iter().filter(|r| r.name == c.process).collect();
                let alive = mine.last().is_some_and(|r| state::is_alive(r));
                let now_shown = (alive, mine.len().saturating_sub(1));
                if shown.get(&name) == Some(&now_shown)
                    || (!shown.contains_key(&name) && now_shown == (true, 0))
                {
                    shown.insert(name, now_shown);
                    continue;
                }
                let patch = status(&c, alive, now_shown.1, &now());
                if api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .is_ok()
                {
                    shown.insert(name, now_shown);
                }
            }
        }
    }
}

/// Whether a pod is one of these (the kubelet does not run it).
pub fn is_component(pod: &Pod) -> bool {
    pod.annotations().contains_key(COMPONENT_ANNOTATION)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn daemon() -> Component {
        Component {
            process: "egress-gateway-daemon-gw000000".into(),
            role: "gateway-daemon",
            node: "gw000000".into(),
            host_ip: "10.224.0.6".into(),
            netns: Some("r1-gw000000".into()),
        }
    }

    #[test]
    fn pods_look_like_the_charts() {
        let c = daemon();
        let name = c.pod_name();
        assert!(
            name.starts_with("kube-egress-gateway-gateway-daemon-") && name.len() == 40,
            "{name}"
        );
        let pod = c.pod(&name);
        assert_eq!(
            pod["metadata"]["labels"]["app.kubernetes.io/component"],
            "gateway-daemon"
        );
        assert_eq!(pod["spec"]["hostNetwork"], true);
        assert_eq!(pod["spec"]["containers"][0]["name"], "daemon");
        let op = Component {
            role: "operator",
            netns: None,
            ..daemon()
        };
        let n = op.pod_name();
        assert!(
            n.starts_with("kube-egress-gateway-operator-")
                && n.len() == "kube-egress-gateway-operator-".len() + 16,
            "{n}"
        );
    }

    #[test]
    fn status_follows_the_process() {
        let up = status(&daemon(), true, 0, "t");
        assert_eq!(up["status"]["containerStatuses"][0]["ready"], true);
        assert_eq!(up["status"]["podIP"], "10.224.0.6");
        let down = status(&daemon(), false, 1, "t");
        assert_eq!(down["status"]["containerStatuses"][0]["restartCount"], 1);
        assert!(down["status"]["containerStatuses"][0]["state"]["terminated"].is_object());
    }
}
