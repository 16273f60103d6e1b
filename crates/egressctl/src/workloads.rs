//! Where pod templates live in the built-in workload kinds, so the egress annotation can be
//! checked on Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs.

use serde_json::Value;

/// A pod (template) found in a workload: its field path prefix, annotations and host networking.
pub(crate) struct PodTemplate<'a> {
    pub path: &'static str,
    pub metadata: Option<&'a Value>,
    pub spec: Option<&'a Value>,
}

/// The pod template of a built-in workload, or `None` for kinds that have none.
pub(crate) fn pod_template<'a>(
    api_version: &str,
    kind: &str,
    obj: &'a Value,
) -> Option<PodTemplate<'a>> {
    let (path, template) = match (api_version, kind) {
        ("v1", "Pod") => {
            return Some(PodTemplate {
                path: "",
                metadata: obj.get("metadata"),
                spec: obj.get("spec"),
            });
        }
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch/v1", "Job")
        | ("v1", "ReplicationController") => ("spec.template.", obj.pointer("/spec/template")),
        ("batch/v1", "CronJob") => (
            "spec.jobTemplate.spec.template.",
            obj.pointer("/spec/jobTemplate/spec/template"),
        ),
        _ => return None,
    };
    let template = template?;
    Some(PodTemplate {
        path,
        metadata: template.get("metadata"),
        spec: template.get("spec"),
    })
}
