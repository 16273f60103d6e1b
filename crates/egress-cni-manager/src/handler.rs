//! Answers plugin requests: which gateway a pod uses (from the node-local pod cache and the SGC
//! cache, by the one rule of `egress_api::selection`), ADD (checks that the pod is on this
//! node, uses a gateway (annotation, or the one `podSelector` selecting it) and owns the
//! claimed IP, then server-side-applies its PodEndpoint) and DEL (removes the PodEndpoint of
//! that sandbox only).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::json;

use std::sync::Arc;

use egress_api::constants::{API_VERSION, FIELD_MANAGER_CNI_MANAGER, POD_ANNOTATION};
use egress_api::selection::{Choice, Selectors};
use egress_api::{PodEndpoint, StaticGatewayConfiguration};
use egress_cni_proto::{
    AddReply, AddRequest, DelReply, DelRequest, ErrorKind, ErrorReply, PodGatewayReply, PodRef,
    Reply, Request, usable_pod_ipv6,
};

use crate::gateway::{self, GatewayError};
use crate::gateways::GatewayCache;
use crate::metrics::Metrics;
use crate::state::{PodCache, PodFacts, PodKey};

/// Label on PodEndpoints naming the node whose manager wrote them.
pub const NODE_LABEL: &str = "egressgateway.kubernetes.azure.com/node";
/// Annotation on PodEndpoints holding the sandbox (`CNI_CONTAINERID`) they belong to.
pub const CONTAINER_ID_ANNOTATION: &str = "egressgateway.kubernetes.azure.com/container-id";

/// Why a request failed; each maps to an [`ErrorKind`] and a message for the pod's events.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// No such pod.
    #[error("pod {0} does not exist")]
    PodNotFound(PodRef),
    /// The pod was re-created under the same name.
    #[error("pod {pod} has UID {actual}, not {claimed} (the pod was re-created)")]
    PodUid {
        /// Pod.
        pod: PodRef,
        /// UID the runtime sent.
        claimed: String,
        /// UID in the API.
        actual: String,
    },
    /// Another node's pod.
    #[error(
        "pod {pod} is scheduled to node {actual:?}, not to {node}: this egress-cni-manager serves only its own node"
    )]
    PodNotOnNode {
        /// Pod.
        pod: PodRef,
        /// Its node.
        actual: String,
        /// Our node.
        node: String,
    },
    /// ADD for a pod without the annotation that no `podSelector` selects.
    #[error("pod {0} has no {POD_ANNOTATION} annotation and no podSelector selects it")]
    NotAnnotated(PodRef),
    /// Not annotated, and selected by two or more SGCs: it uses none of them.
    #[error("pod {pod}: {reason}")]
    SelectorConflict {
        /// Pod.
        pod: PodRef,
        /// Which SGCs and what to do.
        reason: String,
    },
    /// The claimed IP is not the pod's.
    #[error("pod {pod} has IP(s) {known:?} in the Kubernetes API, not {claimed}")]
    IpNotPods {
        /// Pod.
        pod: PodRef,
        /// Claimed IP.
        claimed: IpAddr,
        /// IPs in the API.
        known: Vec<IpAddr>,
    },
    /// The claimed IP is another pod's.
    #[error("IP {claimed} claimed for pod {pod} belongs to pod {holder} on this node")]
    IpTaken {
        /// Pod.
        pod: PodRef,
        /// Claimed IP.
        claimed: IpAddr,
        /// Pod holding it (`namespace/name`).
        holder: String,
    },
    /// The SGC named by the annotation (or selecting the pod) does not exist.
    #[error("StaticGatewayConfiguration {namespace}/{name} {via} of pod {pod} does not exist")]
    GatewayNotFound {
        /// How the pod came to it.
        via: Via,
        /// Pod.
        pod: PodRef,
        /// SGC namespace.
        namespace: String,
        /// SGC name.
        name: String,
    },
    /// SGC not ready, unusable, failed or being deleted.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The API call failed.
    #[error("failed to {action}: {source}")]
    Api {
        /// What was attempted.
        action: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

impl HandlerError {
    /// Protocol error kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HandlerError::PodNotFound(_) | HandlerError::PodUid { .. } => ErrorKind::PodNotFound,
            HandlerError::PodNotOnNode { .. } => ErrorKind::PodNotOnNode,
            HandlerError::NotAnnotated(_) => ErrorKind::PodNotAnnotated,
            HandlerError::SelectorConflict { .. } => ErrorKind::GatewayConflict,
            HandlerError::IpNotPods { .. } | HandlerError::IpTaken { .. } => ErrorKind::IpMismatch,
            HandlerError::GatewayNotFound { .. } => ErrorKind::GatewayNotFound,
            HandlerError::Gateway(GatewayError::NotReady { .. }) => ErrorKind::GatewayNotReady,
            HandlerError::Gateway(GatewayError::Invalid { .. }) => ErrorKind::GatewayInvalid,
            HandlerError::Gateway(GatewayError::Failed { .. } | GatewayError::Deleting { .. }) => {
                ErrorKind::GatewayFailed
            }
            HandlerError::Api { .. } => ErrorKind::ApiUnavailable,
        }
    }
}

/// The request handler of one node.
#[derive(Clone)]
pub struct RequestHandler {
    client: kube::Client,
    node: String,
    cache: PodCache,
    gateways: GatewayCache,
    metrics: Metrics,
}

impl std::fmt::Debug for RequestHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHandler")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// How a pod came to its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Its annotation names it.
    Annotation,
    /// Its `podSelector` alone selects the pod.
    Selector,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Annotation => write!(f, "named by the {POD_ANNOTATION} annotation"),
            Via::Selector => f.write_str("whose podSelector selected it"),
        }
    }
}

fn key_of(pod: &PodRef) -> PodKey {
    (pod.namespace.clone(), pod.name.clone())
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl RequestHandler {
    /// A handler for `node`.
    pub fn new(
        client: kube::Client,
        node: String,
        cache: PodCache,
        gateways: GatewayCache,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            node,
            cache,
            gateways,
            metrics,
        }
    }

    /// Answers one request (never fails: errors become [`Reply::Error`]).
    pub async fn handle(&self, request: Request) -> Reply {
        let op = request.op();
        let started = std::time::Instant::now();
        let pod = request.pod().clone();
        let result = match request {
            Request::PodGateway { pod } => self.pod_gateway(&pod).await.map(Reply::PodGateway),
            Request::Add(r) => self.add(r).await.map(Reply::Added),
            Request::Del(r) => self.del(r).await.map(Reply::Deleted),
            Request::Report(r) => Ok(Reply::Reported(crate::report::record(
                &self.client,
                &self.cache,
                &self.metrics,
                r,
            ))),
        };
        let (reply, label) = match result {
            Ok(reply) => (reply, "ok".to_string()),
            Err(e) => {
                let kind = e.kind();
                let message = crate::error_chain(&e);
                tracing::warn!(%pod, op, ?kind, "refused: {message}");
                (
                    Reply::Error(ErrorReply { kind, message }),
                    format!("{kind:?}"),
                )
            }
        };
        let labels = crate::metrics::RequestLabels {
            op: op.to_string(),
            result: label,
        };
        self.metrics.requests.get_or_create(&labels).inc();
        self.metrics
            .request_seconds
            .get_or_create(&crate::metrics::OpLabels { op: op.to_string() })
            .observe(started.elapsed().as_secs_f64());
        reply
    }

    /// The pod's facts: from the cache, else one GET (a pod created moments ago may not have
    /// reached the watch yet). Refuses pods of other nodes and re-created pods.
    async fn pod_facts(&self, pod: &PodRef) -> Result<PodFacts, HandlerError> {
        let facts = match self.cache.get(&key_of(pod)) {
            Some(f) => f,
            None => {
                self.metrics.pod_cache_misses.inc();
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
                let got = api
                    .get_opt(&pod.name)
                    .await
                    .map_err(|source| HandlerError::Api {
                        action: format!("get pod {pod}"),
                        source,
                    })?;
                let p = got.ok_or_else(|| HandlerError::PodNotFound(pod.clone()))?;
                crate::pod_watch::facts(&p)
            }
        };
        if facts.node_name.as_deref() != Some(self.node.as_str()) {
            return Err(HandlerError::PodNotOnNode {
                pod: pod.clone(),
                actual: facts.node_name.unwrap_or_default(),
                node: self.node.clone(),
            });
        }
        if let Some(claimed) = &pod.uid
            && !claimed.is_empty()
            && *claimed != facts.uid
        {
            return Err(HandlerError::PodUid {
                pod: pod.clone(),
                claimed: claimed.clone(),
                actual: facts.uid,
            });
        }
        Ok(facts)
    }

    /// The selectors `namespace`'s pods are resolved with: from the SGC cache, or (before it
    /// synced) one LIST of the namespace's SGCs.
    async fn selectors(&self, namespace: &str) -> Result<Arc<Selectors>, HandlerError> {
        if let Some(s) = self.gateways.selectors() {
            return Ok(s);
        }
        let api: Api<StaticGatewayConfiguration> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&Default::default())
            .await
            .map_err(|source| HandlerError::Api {
                action: format!("list StaticGatewayConfigurations of namespace {namespace}"),
                source,
            })?;
        Ok(Arc::new(Selectors::of(&list.items)))
    }

    /// The gateway `pod` uses by the one rule; an annotated pod needs no selectors.
    async fn choice(&self, pod: &PodRef, facts: &PodFacts) -> Result<Choice, HandlerError> {
        if let Some(name) = &facts.annotation {
            return Ok(Choice::Annotation(name.clone()));
        }
        let selectors = self.selectors(&pod.namespace).await?;
        Ok(facts.choice(&pod.namespace, &selectors))
    }

    /// The pod's one gateway, or why it has none (`Ok(None)`: a plain pod).
    async fn gateway_name(
        &self,
        pod: &PodRef,
        facts: &PodFacts,
    ) -> Result<Option<(String, Via)>, HandlerError> {
        let choice = self.choice(pod, facts).await?;
        if let Some(reason) = choice.conflict_reason(&pod.namespace) {
            return Err(HandlerError::SelectorConflict {
                pod: pod.clone(),
                reason,
            });
        }
        Ok(match choice {
            Choice::Annotation(n) => Some((n, Via::Annotation)),
            Choice::Selector(n) => Some((n, Via::Selector)),
            Choice::Conflict(_) | Choice::None => None,
        })
    }

    async fn pod_gateway(&self, pod: &PodRef) -> Result<PodGatewayReply, HandlerError> {
        let facts = self.pod_facts(pod).await?;
        Ok(PodGatewayReply {
            gateway: self.gateway_name(pod, &facts).await?.map(|(n, _)| n),
        })
    }

    fn check_ip(&self, pod: &PodRef, facts: &PodFacts, ip: IpAddr) -> Result<(), HandlerError> {
        let key = key_of(pod);
        if let Some(holder) = self.cache.ip_holder(ip, &key) {
            return Err(HandlerError::IpTaken {
                pod: pod.clone(),
                claimed: ip,
                holder: format!("{}/{}", holder.0, holder.1),
            });
        }
        // The API learns a pod's IP only after ADD; a recorded IP that differs is refused
        // unless this pod's previous sandbox was torn down (its recorded IP is stale then).
        if !facts.ips.is_empty()
            && !facts.ips.contains(&ip)
            && !self.cache.is_released(&key, &facts.uid)
        {
            return Err(HandlerError::IpNotPods {
                pod: pod.clone(),
                claimed: ip,
                known: facts.ips.clone(),
            });
        }
        Ok(())
    }

    async fn add(&self, req: AddRequest) -> Result<AddReply, HandlerError> {
        let pod = &req.pod;
        let facts = self.pod_facts(pod).await?;
        let (sgc_name, via) = self
            .gateway_name(pod, &facts)
            .await?
            .ok_or_else(|| HandlerError::NotAnnotated(pod.clone()))?;
        self.check_ip(pod, &facts, req.pod_ip)?;
        if let Some(v6) = req.pod_ipv6 {
            if !usable_pod_ipv6(&v6) {
                return Err(HandlerError::IpNotPods {
                    pod: pod.clone(),
                    claimed: v6.into(),
                    known: facts.ips.clone(),
                });
            }
            self.check_ip(pod, &facts, v6.into())?;
        }
        let sgcs: Api<StaticGatewayConfiguration> =
            Api::namespaced(self.client.clone(), &pod.namespace);
        let sgc = sgcs
            .get_opt(&sgc_name)
            .await
            .map_err(|source| HandlerError::Api {
                action: format!(
                    "get StaticGatewayConfiguration {}/{sgc_name}",
                    pod.namespace
                ),
                source,
            })?
            .ok_or_else(|| HandlerError::GatewayNotFound {
                via,
                pod: pod.clone(),
                namespace: pod.namespace.clone(),
                name: sgc_name.clone(),
            })?;
        let reply = gateway::to_reply_for(&sgc, req.pod_ipv6.is_some())?;
        // Without IPv6 egress the field is left out of the apply, which clears one an
        // earlier sandbox of the pod set.
        let pod_ipv6 = req.pod_ipv6.filter(|_| reply.ipv6);
        let prefix = if req.pod_ip.is_ipv4() { 32 } else { 128 };
        let mut endpoint = json!({
            "apiVersion": API_VERSION,
            "kind": "PodEndpoint",
            "metadata": {
                "name": pod.name,
                "namespace": pod.namespace,
                "labels": { NODE_LABEL: self.node },
                "annotations": { CONTAINER_ID_ANNOTATION: req.container_id },
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": facts.uid,
                    "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {
                "staticGatewayConfiguration": sgc_name,
                "podIpAddress": format!("{}/{prefix}", req.pod_ip),
                "podPublicKey": req.public_key.as_str(),
            },
        });
        if let Some(v6) = pod_ipv6 {
            endpoint["spec"]["podIpv6Address"] = json!(format!("{v6}/128"));
        }
        let api: Api<PodEndpoint> = Api::namespaced(self.client.clone(), &pod.namespace);
        api.patch(
            &pod.name,
            &PatchParams::apply(FIELD_MANAGER_CNI_MANAGER).force(),
            &Patch::Apply(endpoint),
        )
        .await
        .map_err(|source| HandlerError::Api {
            action: format!("apply PodEndpoint {pod}"),
            source,
        })?;
        tracing::info!(%pod, ip = %req.pod_ip, ipv6 = ?pod_ipv6, gateway = %sgc_name, "PodEndpoint applied");
        Ok(reply)
    }

    async fn del(&self, req: DelRequest) -> Result<DelReply, HandlerError> {
        let pod = &req.pod;
        let key = key_of(pod);
        let cached = self.cache.get(&key);
        if let Some(f) = &cached {
            self.cache.release(&key, &f.uid);
            let selectable = self
                .gateways
                .selectors()
                .is_none_or(|s| s.has_namespace(&pod.namespace));
            if f.annotation.is_none() && !selectable {
                // Answered from the caches: a pod without the annotation in a namespace without
                // selectors never had an endpoint (and if the annotation or selector went
                // later, owner GC removes it with the pod).
                return Ok(DelReply { deleted: false });
            }
        }
        self.remove_endpoint(pod, &req.container_id).await
    }

    /// Deletes the pod's PodEndpoint if it belongs to sandbox `container_id` (a newer
    /// sandbox's is kept). DEL uses it, and the attachment of running pods when a pod leaves
    /// its gateway or an attach is undone.
    pub async fn remove_endpoint(
        &self,
        pod: &PodRef,
        container_id: &str,
    ) -> Result<DelReply, HandlerError> {
        let api: Api<PodEndpoint> = Api::namespaced(self.client.clone(), &pod.namespace);
        let api_err = |action: &str| {
            let action = format!("{action} PodEndpoint {pod}");
            move |source| HandlerError::Api { action, source }
        };
        let Some(existing) = api.get_opt(&pod.name).await.map_err(api_err("get"))? else {
            return Ok(DelReply { deleted: false });
        };
        let owner = existing.annotations().get(CONTAINER_ID_ANNOTATION);
        if owner.is_some_and(|c| c != container_id) {
            tracing::info!(%pod, container = %container_id, "older sandbox: PodEndpoint kept");
            return Ok(DelReply { deleted: false });
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: existing.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&pod.name, &params).await {
            Ok(_) => {
                tracing::info!(%pod, "PodEndpoint deleted");
                Ok(DelReply { deleted: true })
            }
            Err(e) if is_not_found(&e) => Ok(DelReply { deleted: false }),
            Err(e) => Err(api_err("delete")(e)),
        }
    }
}
