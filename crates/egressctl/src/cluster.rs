//! Reading what the components publish, with the user's kubeconfig and read-only RBAC:
//! StaticGatewayConfigurations and their GatewayVMConfigurations (the operator), GatewayStatuses
//! (the gateway daemons), PodEndpoints (the CNI managers, with status from the operator and the
//! managers), and for `explain` the pod itself. Nothing is written. GatewayStatuses are listed
//! in every namespace unless `--system-namespace` names the release's.

use egress_api::{GatewayStatus, GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Which kubeconfig and context to use.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `--kubeconfig` (else `KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// Namespace of the GatewayStatuses (`None`: all namespaces).
    pub system_namespace: Option<String>,
}

/// Reading the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig.
    #[error("failed to load the kubeconfig: {0}")]
    Config(String),
    /// An API request failed (unreachable, forbidden, ...).
    #[error("failed to {action}: {source}")]
    Api {
        /// What was read.
        action: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

/// A client and the kubeconfig's default namespace.
pub async fn connect(c: &Connection) -> Result<(kube::Client, String), ClusterError> {
    let options = KubeConfigOptions {
        context: c.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &c.kubeconfig {
        Some(path) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| ClusterError::Config(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| ClusterError::Config(e.to_string()))?
        }
        None if c.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
    };
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
    Ok((client, namespace))
}

/// What `status` and `explain` decide from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The gateways in scope.
    pub sgcs: Vec<StaticGatewayConfiguration>,
    /// Their VM configurations (same names).
    pub vm_configs: Vec<GatewayVMConfiguration>,
    /// Every gateway node's GatewayStatus.
    pub statuses: Vec<GatewayStatus>,
    /// PodEndpoints in scope.
    pub pod_endpoints: Vec<PodEndpoint>,
    /// The pod `explain` is about.
    pub pod: Option<Pod>,
}

fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Api { action, source }
}

async fn list<K>(api: Api<K>, what: &str) -> Result<Vec<K>, ClusterError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .list(&ListParams::default())
        .await
        .map_err(api_err(format!("list {what}")))?
        .items)
}

fn api_in<K>(client: &kube::Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Everything `status` needs for the gateways of `namespace` (`None`: all namespaces), or
/// just the one named `sgc`.
pub async fn for_status(
    client: &kube::Client,
    c: &Connection,
    namespace: Option<&str>,
    sgc: Option<&str>,
) -> Result<Snapshot, ClusterError> {
    let mut sgcs: Vec<StaticGatewayConfiguration> =
        list(api_in(client, namespace), "StaticGatewayConfigurations").await?;
    if let Some(name) = sgc {
        sgcs.retain(|s| s.metadata.name.as_deref() == Some(name));
    }
    Ok(Snapshot {
        sgcs,
        vm_configs: list(api_in(client, namespace), "GatewayVMConfigurations").await?,
        statuses: list(
            api_in(client, c.system_namespace.as_deref()),
            "GatewayStatuses",
        )
        .await?,
        pod_endpoints: list(api_in(client, namespace), "PodEndpoints").await?,
        pod: None,
    })
}

/// Everything `explain pod` needs: the pod, its gateway, that gateway's VM configuration, its
/// PodEndpoint and the GatewayStatuses.
pub async fn for_explain(
    client: &kube::Client,
    c: &Connection,
    namespace: &str,
    pod: &str,
) -> Result<Snapshot, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let Some(pod_obj) = pods
        .get_opt(pod)
        .await
        .map_err(api_err(format!("read pod {namespace}/{pod}")))?
    else {
        return Ok(Snapshot::default());
    };
    let mut snap = Snapshot {
        statuses: list(
            api_in(client, c.system_namespace.as_deref()),
            "GatewayStatuses",
        )
        .await?,
        ..Snapshot::default()
    };
    let gateway = pod_obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(egress_api::constants::POD_ANNOTATION))
        .cloned();
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(client.clone(), namespace);
    let annotation = gateway.filter(|g| !g.is_empty());
    if let Some(name) = &annotation {
        let action = format!("read StaticGatewayConfiguration {namespace}/{name}");
        snap.sgcs
            .extend(sgcs.get_opt(name).await.map_err(api_err(action))?);
    } else {
        // Not annotated: any podSelector of the namespace may select the pod.
        let action = format!("list the StaticGatewayConfigurations of namespace {namespace}");
        snap.sgcs.extend(
            sgcs.list(&Default::default())
                .await
                .map_err(api_err(action))?
                .items,
        );
    }
    let chosen = egress_api::selection::Selectors::of(&snap.sgcs)
        .choose(
            namespace,
            kube::ResourceExt::labels(&pod_obj),
            annotation.as_deref(),
        )
        .gateway()
        .map(str::to_owned);
    if let Some(name) = chosen {
        let vms: Api<GatewayVMConfiguration> = Api::namespaced(client.clone(), namespace);
        let action = format!("read GatewayVMConfiguration {namespace}/{name}");
        snap.vm_configs
            .extend(vms.get_opt(&name).await.map_err(api_err(action))?);
    }
    let pes: Api<PodEndpoint> = Api::namespaced(client.clone(), namespace);
    let action = format!("read PodEndpoint {namespace}/{pod}");
    snap.pod_endpoints
        .extend(pes.get_opt(pod).await.map_err(api_err(action))?);
    snap.pod = Some(pod_obj);
    Ok(snap)
}
