//! Server-side printing of the built-ins whose columns are computed rather than read by
//! JSONPath, as the real server's printers compute them: Pods (READY, STATUS, RESTARTS),
//! Deployments, ReplicaSets, core Events (LAST SEEN, OBJECT) and Nodes (STATUS, ROLES).

use serde_json::{Value, json};

use crate::resource::ResourceInfo;
use crate::table::human_duration;

/// A column: name, type, priority (1 = `-o wide` only).
type Column = (&'static str, &'static str, i64);

/// The computed columns (after Name) of `res`, and the cells of one object.
pub struct Printer {
    /// Column definitions after `Name`.
    pub columns: &'static [Column],
    /// The cells after the name.
    pub cells: fn(&Value) -> Vec<Value>,
}

/// The printer of a built-in, if it has a computed one.
pub fn for_resource(res: &ResourceInfo) -> Option<Printer> {
    if res.custom {
        return None;
    }
    Some(match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => Printer {
            columns: &[
                ("Ready", "string", 0),
                ("Status", "string", 0),
                ("Restarts", "string", 0),
                ("Age", "string", 0),
                ("IP", "string", 1),
                ("Node", "string", 1),
                ("Nominated Node", "string", 1),
                ("Readiness Gates", "string", 1),
            ],
            cells: pod_cells,
        },
        ("apps", "Deployment") => Printer {
            columns: &[
                ("Ready", "string", 0),
                ("Up-to-date", "integer", 0),
                ("Available", "integer", 0),
                ("Age", "string", 0),
                ("Containers", "string", 1),
                ("Images", "string", 1),
                ("Selector", "string", 1),
            ],
            cells: deployment_cells,
        },
        ("apps", "ReplicaSet") => Printer {
            columns: &[
                ("Desired", "integer", 0),
                ("Current", "integer", 0),
                ("Ready", "integer", 0),
                ("Age", "string", 0),
                ("Containers", "string", 1),
                ("Images", "string", 1),
                ("Selector", "string", 1),
            ],
            cells: replicaset_cells,
        },
        ("", "Event") => Printer {
            columns: &[
                ("Last Seen", "string", 0),
                ("Type", "string", 0),
                ("Reason", "string", 0),
                ("Object", "string", 0),
                ("Subobject", "string", 1),
                ("Source", "string", 1),
                ("Message", "string", 0),
                ("First Seen", "string", 1),
                ("Count", "string", 1),
                ("Name", "string", 1),
            ],
            cells: event_cells,
        },
        ("", "Node") => Printer {
            columns: &[
                ("Status", "string", 0),
                ("Roles", "string", 0),
                ("Age", "string", 0),
                ("Version", "string", 0),
                ("Internal-IP", "string", 1),
                ("External-IP", "string", 1),
            ],
            cells: node_cells,
        },
        _ => return None,
    })
}

/// The age of an RFC 3339 timestamp, as kubectl prints it (`<unknown>` when absent).
pub fn age(ts: Option<&str>) -> String {
    match ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn created(v: &Value) -> String {
    age(str_at(v, "/metadata/creationTimestamp"))
}

/// The STATUS column: printPod's reason (waiting/terminated reasons of the containers,
/// `Terminating`, else the phase).
pub fn pod_status(pod: &Value) -> String {
    let mut reason = str_at(pod, "/status/reason")
        .or_else(|| str_at(pod, "/status/phase"))
        .unwrap_or("Pending")
        .to_string();
    let mut running = false;
    for cs in list(pod, "/status/containerStatuses").iter().rev() {
        if let Some(r) = str_at(cs, "/state/waiting/reason").filter(|r| !r.is_empty()) {
            reason = r.to_string();
        } else if let Some(t) = cs.pointer("/state/terminated") {
            reason = match str_at(t, "/reason").filter(|r| !r.is_empty()) {
                Some(r) => r.to_string(),
                None => format!("ExitCode:{}", int_at(t, "/exitCode")),
            };
        } else if cs.get("ready").and_then(Value::as_bool) == Some(true)
            && cs.pointer("/state/running").is_some()
        {
            running = true;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        reason = "Terminating".into();
    }
    reason
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = list(pod, "/status/containerStatuses");
    let total = list(pod, "/spec/containers").len();
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses.iter().map(|c| int_at(c, "/restartCount")).sum();
    let last_restart = statuses
        .iter()
        .filter_map(|c| str_at(c, "/lastState/terminated/finishedAt"))
        .max();
    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", age(Some(t))),
        _ => restarts.to_string(),
    };
    let or_none = |p: &str| json!(str_at(pod, p).filter(|s| !s.is_empty()).unwrap_or("<none>"));
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts),
        json!(created(pod)),
        or_none("/status/podIP"),
        or_none("/spec/nodeName"),
        or_none("/status/nominatedNodeName"),
        json!("<none>"),
    ]
}

fn containers_and_images(template_spec: &Value) -> (Value, Value) {
    let cs = list(template_spec, "/containers");
    let names: Vec<&str> = cs.iter().filter_map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| str_at(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

fn selector(obj: &Value) -> Value {
    let s = crate::workloads::scale::selector_string(
        obj.pointer("/spec/selector").unwrap_or(&Value::Null),
    );
    json!(if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    })
}

fn deployment_cells(d: &Value) -> Vec<Value> {
    let (names, images) =
        containers_and_images(d.pointer("/spec/template/spec").unwrap_or(&Value::Null));
    vec![
        json!(format!(
            "{}/{}",
            int_at(d, "/status/readyReplicas"),
            int_at(d, "/spec/replicas")
        )),
        json!(int_at(d, "/status/updatedReplicas")),
        json!(int_at(d, "/status/availableReplicas")),
        json!(created(d)),
        names,
        images,
        selector(d),
    ]
}

fn replicaset_cells(rs: &Value) -> Vec<Value> {
    let (names, images) =
        containers_and_images(rs.pointer("/spec/template/spec").unwrap_or(&Value::Null));
    vec![
        json!(int_at(rs, "/spec/replicas")),
        json!(int_at(rs, "/status/replicas")),
        json!(int_at(rs, "/status/readyReplicas")),
        json!(created(rs)),
        names,
        images,
        selector(rs),
    ]
}

fn event_cells(e: &Value) -> Vec<Value> {
    let last = str_at(e, "/lastTimestamp")
        .or_else(|| str_at(e, "/series/lastObservedTime"))
        .or_else(|| str_at(e, "/eventTime"));
    let first = str_at(e, "/firstTimestamp").or_else(|| str_at(e, "/eventTime"));
    let kind = str_at(e, "/involvedObject/kind")
        .unwrap_or_default()
        .to_lowercase();
    let name = str_at(e, "/involvedObject/name").unwrap_or_default();
    let source = match (str_at(e, "/source/component"), str_at(e, "/source/host")) {
        (Some(c), Some(h)) => format!("{c}, {h}"),
        (Some(c), None) => c.to_string(),
        _ => str_at(e, "/reportingComponent")
            .unwrap_or_default()
            .to_string(),
    };
    vec![
        json!(age(last)),
        json!(str_at(e, "/type").unwrap_or_default()),
        json!(str_at(e, "/reason").unwrap_or_default()),
        json!(format!("{kind}/{name}")),
        json!(str_at(e, "/involvedObject/fieldPath").unwrap_or_default()),
        json!(source),
        json!(str_at(e, "/message").unwrap_or_default().trim()),
        json!(age(first)),
        json!(int_at(e, "/count").max(1).to_string()),
        json!(str_at(e, "/metadata/name").unwrap_or_default()),
    ]
}

fn node_cells(n: &Value) -> Vec<Value> {
    let ready = list(n, "/status/conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if n.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = n
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let address = |ty: &str| {
        list(n, "/status/addresses")
            .iter()
            .find(|a| a["type"] == ty)
            .and_then(|a| a["address"].as_str())
            .unwrap_or("<none>")
            .to_string()
    };
    vec![
        json!(status),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(created(n)),
        json!(str_at(n, "/status/nodeInfo/kubeletVersion").unwrap_or_default()),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn pod_columns_follow_kubectl() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Pending", "podIP": "10.0.0.1", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        let cells = pod_cells(&pod);
        assert_eq!(cells[0], "1/2");
        assert_eq!(cells[1], "ContainerCreating");
        assert_eq!(cells[2], "3");
        assert_eq!(cells[5], "n1");
        let running = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        assert_eq!(
            pod_cells(&running)[..3],
            [json!("1/1"), json!("Running"), json!("0")]
        );
        let deleting = json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");
    }

    #[test]
    fn event_and_node_columns() {
        let e = json!({"type": "Warning", "reason": "FailedCreatePodSandBox", "message": "boom ",
            "involvedObject": {"kind": "Pod", "name": "p"}, "count": 3, "source": {"component": "kubelet", "host": "n1"}});
        let cells = event_cells(&e);
        assert_eq!(cells[3], "pod/p");
        assert_eq!(cells[5], "kubelet, n1");
        assert_eq!(cells[6], "boom");
        assert_eq!(cells[8], "3");
        let n = json!({"metadata": {"labels": {"node-role.kubernetes.io/agent": ""}}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.4"}]}});
        let cells = node_cells(&n);
        assert_eq!(cells[0], "Ready,SchedulingDisabled");
        assert_eq!(cells[1], "agent");
        assert_eq!(cells[4], "10.0.0.4");
    }
}
