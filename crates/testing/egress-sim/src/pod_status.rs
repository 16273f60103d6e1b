//! What the simulated kubelet tells about a pod, as a real kubelet would: the status (phase,
//! IPs, conditions, one container status per container with `ready`, `restartCount`,
//! `state`), the pod's kubelet log (`kubectl logs`: sandbox attempts, CNI errors, start) and
//! core/v1 Events (`Scheduled`, `FailedCreatePodSandBox` with the CNI message — repeated ones
//! counted on one Event, as the kubelet's recorder aggregates — `Created`, `Started`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::k8s::now;

/// The pod's containers as `(name, image)`.
fn containers(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// The status of a running pod: every container ready and running since `started`.
/// `ip6` is a dual-stack pod's IPv6 address, listed after the IPv4 one as the kubelet does.
pub fn running(
    pod: &Pod,
    ip: &str,
    ip6: Option<&str>,
    host_ip: Option<&str>,
    sandbox: &str,
    started: &str,
) -> Value {
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": "", "containerID": format!("sim://{sandbox}"),
                   "ready": true, "started": true, "restartCount": 0,
                   "state": {"running": {"startedAt": started}}})
        })
        .collect();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": started});
    json!({"status": {
        "phase": "Running", "podIP": ip,
        "podIPs": std::iter::once(ip).chain(ip6).map(|i| json!({"ip": i})).collect::<Vec<_>>(),
        "hostIP": host_ip,
        "hostIPs": host_ip.map(|h| json!([{"ip": h}])),
        "startTime": pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map_or(json!(started), |t| json!(t)),
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                       cond("ContainersReady"), cond("PodScheduled")],
        "containerStatuses": statuses,
    }})
}

/// The status of a pod whose sandbox could not be created (`error` from CNI ADD).
pub fn waiting(pod: &Pod, host_ip: Option<&str>, error: &str, since: &str) -> Value {
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": "", "ready": false, "started": false,
                   "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}})
        })
        .collect();
    let names: Vec<String> = containers(pod).into_iter().map(|(n, _)| n).collect();
    json!({"status": {
        "phase": "Pending", "hostIP": host_ip, "startTime": since,
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "False", "lastTransitionTime": since},
            {"type": "Initialized", "status": "True", "lastTransitionTime": since},
            {"type": "Ready", "status": "False", "reason": "FailedCreatePodSandBox", "message": error,
             "lastTransitionTime": since},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
             "message": format!("containers with unready status: [{}]", names.join(" ")), "lastTransitionTime": since},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": since},
        ],
        "containerStatuses": statuses,
    }})
}

/// Where a pod's kubelet log lives under the run's `pods` directory.
pub fn log_path(dir: &Path, ns: &str, name: &str, uid: &str) -> PathBuf {
    dir.join(format!("{ns}_{name}_{uid}.log"))
}

/// The pod's `/etc/hosts` (next to its log): localhost, its own name, and the simulated
/// internet's "what is my IP" names on the internet server.
pub fn hosts_file(pod: &str, ip: Option<&str>) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = ip {
        out.push_str(&format!("{ip}\t{pod}\n"));
    }
    out.push_str(&format!(
        "{}\t{}\n",
        crate::seed::INTERNET_SERVER_IP,
        crate::services::WHAT_IS_MY_IP.join(" ")
    ));
    out
}

/// Appends one timestamped line to a pod's kubelet log (a failure is only logged: the pod's
/// life does not depend on it).
pub fn log_line(path: &Path, line: &str) {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{} {line}", now()));
    if let Err(e) = result {
        tracing::debug!(path = %path.display(), error = %e, "failed to write the pod log");
    }
}

/// What makes two Events the same: (pod uid, reason, message).
type EventKey = (String, String, String);

/// Publishes the kubelet's and scheduler's Events about pods.
pub struct Recorder {
    client: Client,
    /// (pod uid, reason, message) -> (event name, count): repeats update one Event.
    seen: Mutex<BTreeMap<EventKey, (String, i32)>>,
}

/// Who reports an Event.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// `default-scheduler`.
    Scheduler,
    /// `kubelet` on this node.
    Kubelet(&'a str),
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder using `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records `reason`/`message` (type `Normal` or `Warning`) about `pod`.
    pub async fn record(
        &self,
        pod: &Pod,
        source: Source<'_>,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let ns = pod.namespace().unwrap_or_default();
        let uid = pod.uid().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let key = (uid.clone(), reason.to_string(), message.to_string());
        let now = now();
        let repeat = self.seen.lock().ok().and_then(|mut s| {
            s.get_mut(&key).map(|(name, count)| {
                *count += 1;
                (name.clone(), *count)
            })
        });
        if let Some((name, count)) = repeat {
            let patch = json!({"count": count, "lastTimestamp": now});
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(error = %e, "failed to update an event");
            }
            return;
        }
        let name = format!(
            "{}.{:x}",
            pod.name_any(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let (component, host) = match source {
            Source::Scheduler => ("default-scheduler", None),
            Source::Kubelet(node) => ("kubelet", Some(node)),
        };
        let event = json!({
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod.name_any(), "uid": uid,
                               "apiVersion": "v1", "resourceVersion": pod.resource_version()},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": component, "host": host},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": host.unwrap_or_default(),
        });
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            return;
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if let Ok(mut s) = self.seen.lock() {
                    s.insert(key, (name, 1));
                }
            }
            Err(e) => tracing::debug!(error = %e, "failed to record an event"),
        }
    }

    /// Forgets a deleted pod's aggregation keys.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut s) = self.seen.lock() {
            s.retain(|(u, _, _), _| u != uid);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "n", "uid": "u"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
        )
        .unwrap()
    }

    #[test]
    fn running_pods_have_ready_container_statuses() {
        let s = running(&pod(), "10.244.0.5", None, Some("10.224.0.4"), "sb1", "t");
        let cs = &s["status"]["containerStatuses"][0];
        assert_eq!(
            (
                cs["name"].as_str(),
                cs["ready"].as_bool(),
                cs["restartCount"].as_i64()
            ),
            (Some("web"), Some(true), Some(0))
        );
        assert_eq!(cs["state"]["running"]["startedAt"], "t");
        assert_eq!(s["status"]["phase"], "Running");
        let ready = s["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
    }

    #[test]
    fn hosts_resolve_the_pod_and_what_is_my_ip_names() {
        let h = hosts_file("web", Some("10.244.0.5"));
        assert!(h.contains("10.244.0.5\tweb\n"));
        assert!(h.contains("192.0.2.1\tifconfig.me "));
    }

    #[test]
    fn waiting_pods_carry_the_cni_message() {
        let s = waiting(
            &pod(),
            None,
            "plugin kube-egress-cni failed ADD (CNI code 11): no socket",
            "t",
        );
        let ready = s["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["reason"], "FailedCreatePodSandBox");
        assert!(ready["message"].as_str().unwrap().contains("CNI code 11"));
        assert_eq!(
            s["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
    }
}
