//! Settings of a running operator: where Azure resources live (from the cloud config), the
//! Secret namespace and the timing of reconciles. Built by `main` from flags, or by tests.

use std::time::Duration;

use egress_azure::{CloudConfig, ResourceGroupId, ResourceId};

use crate::error::Backoff;

/// Where the operator's Azure resources live.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// Subscription of every resource (BYO prefixes must be in it too).
    pub subscription_id: String,
    /// Resource group of node pools looked up by name (tag `aks-managed-poolName`) and of the
    /// managed public IP prefixes (`resourceGroup`).
    pub resource_group: String,
    /// Region of resources we create.
    pub location: String,
    /// The gateway internal load balancer.
    pub load_balancer_id: ResourceId,
    /// Subnet of the load balancer frontends.
    pub subnet_id: ResourceId,
    /// Port of the gateway daemon's health-probe server (`--gateway-lb-probe-port`).
    pub probe_port: u16,
}

impl AzureSettings {
    /// Settings from a validated cloud config.
    pub fn from_cloud_config(c: &CloudConfig, probe_port: u16) -> Self {
        Self {
            subscription_id: c.subscription_id.clone(),
            resource_group: c.resource_group.clone(),
            location: c.location.clone(),
            load_balancer_id: c.load_balancer_id(),
            subnet_id: c.subnet_id(),
            probe_port,
        }
    }

    /// The `resourceGroup` as a list scope.
    pub fn resource_group_id(&self) -> ResourceGroupId {
        ResourceGroupId::new(&self.subscription_id, &self.resource_group)
    }
}

/// Everything a running operator needs besides its clients.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Namespace of the key Secrets (`--namespace`).
    pub namespace: String,
    /// Azure locations.
    pub azure: AzureSettings,
    /// Drift repair: how often a healthy pool is reconciled again (default 5 min).
    pub resync_interval: Duration,
    /// Quiet time after the last change of a pool before it is reconciled, so that a batch of
    /// changes is written together (default 1 s).
    pub debounce: Duration,
    /// How long a pool reconcile waits for new SGCs' internal objects to exist, so that SGCs
    /// created together are provisioned together (default 10 s).
    pub chain_wait: Duration,
    /// Retry timing after errors.
    pub backoff: Backoff,
    /// Scale-set instances updated at once (default 4).
    pub instance_concurrency: usize,
    /// `reportingController` of Events.
    pub reporter: String,
    /// Pod name (`reportingInstance` of Events), if known.
    pub instance: Option<String>,
}

impl OperatorConfig {
    /// Defaults for everything but the namespace and Azure settings.
    pub fn new(namespace: impl Into<String>, azure: AzureSettings) -> Self {
        Self {
            namespace: namespace.into(),
            azure,
            resync_interval: Duration::from_secs(300),
            debounce: Duration::from_secs(1),
            chain_wait: Duration::from_secs(10),
            backoff: Backoff::default(),
            instance_concurrency: 4,
            reporter: "egress-operator".to_string(),
            instance: None,
        }
    }
}
