//! Test harness: an in-memory API server with the CRDs, the Azure emulator, and the operator
//! running in-process against both (no fakes of operator code). Waits poll with a deadline.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use egress_api::{GatewayLBConfiguration, GatewayVMConfiguration, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use egress_azure::{ArmClient, ArmMetrics, LroPolicy, ResourceGroupId, RetryPolicy};
use egress_azure_emulator::{Emulator, EmulatorConfig, Seed};
use egress_operator::{AzureSettings, Backoff, Context, Metrics, OperatorConfig, RunOptions};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SUB: &str = "00000000-0000-0000-0000-000000000000";
pub const SECRET_NS: &str = "kube-egress-gateway-system";
pub const NS: &str = "default";
pub const WAIT: Duration = Duration::from_secs(30);

pub const PROFILE: &str =
    "gatewayVmssProfile: {vmssResourceGroup: rg-egress, vmssName: gw-vmss, publicIpPrefixSize: 31}";
pub const NODEPOOL: &str = "gatewayNodepoolName: gwpool";

/// A running operator.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), egress_operator::RunError>>,
    pub metrics: Metrics,
}

impl Running {
    /// Graceful stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("operator did not stop")
            .unwrap()
            .unwrap();
    }

    /// Like a SIGKILL: the task is dropped wherever it is.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub struct Harness {
    pub api: RunningApiServer,
    pub emu: Emulator,
    pub client: kube::Client,
    pub arm: ArmClient,
}

pub fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/crd")
}

pub fn settings() -> AzureSettings {
    let rg = ResourceGroupId::new(SUB, "rg-egress");
    AzureSettings {
        subscription_id: SUB.into(),
        resource_group: "rg-egress".into(),
        location: "eastus".into(),
        load_balancer_id: rg.load_balancer("kubeegressgateway-ilb"),
        subnet_id: rg.subnet("aks-vnet", "aks-subnet"),
        probe_port: 8082,
    }
}

pub fn arm_client(url: &str, metrics: ArmMetrics) -> ArmClient {
    ArmClient::builder(url.parse().unwrap())
        .static_token("test-token")
        .metrics(metrics)
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(2),
            budget: Duration::from_secs(10),
        })
        .lro(LroPolicy {
            max_duration: Duration::from_secs(20),
            default_poll_interval: Duration::from_millis(20),
            max_poll_interval: Duration::from_millis(100),
        })
        .build()
        .unwrap()
}

impl Harness {
    pub async fn start() -> Self {
        Self::with_emulator(EmulatorConfig {
            lro_polls: 1,
            ..Default::default()
        })
        .await
    }

    pub async fn with_seed(seed: Seed) -> Self {
        Self::with_emulator(EmulatorConfig {
            lro_polls: 1,
            seed: Some(seed),
            ..Default::default()
        })
        .await
    }

    pub async fn with_emulator(cfg: EmulatorConfig) -> Self {
        let api = ApiServer::start(ServerConfig::default().with_crds(crd_dir()))
            .await
            .unwrap();
        let client = api.client().unwrap();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": SECRET_NS}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let emu = Emulator::start(cfg).await.unwrap();
        let arm = arm_client(&emu.arm_url(), ArmMetrics::new());
        Self {
            api,
            emu,
            client,
            arm,
        }
    }

    pub fn config(&self) -> OperatorConfig {
        let mut c = OperatorConfig::new(SECRET_NS, settings());
        c.resync_interval = Duration::from_secs(60);
        c.debounce = Duration::from_millis(300);
        c.chain_wait = Duration::from_secs(5);
        c.backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            throttled_default: Duration::from_millis(200),
        };
        c
    }

    pub async fn operator(&self) -> Running {
        self.operator_with(self.config(), RunOptions::default())
            .await
    }

    pub async fn operator_with(&self, config: OperatorConfig, opts: RunOptions) -> Running {
        let arm_metrics = ArmMetrics::new();
        let metrics = Metrics::new(&arm_metrics);
        let ctx = Context::new(
            self.api.client().unwrap(),
            Arc::new(arm_client(&self.emu.arm_url(), arm_metrics)),
            metrics.clone(),
            config,
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(egress_operator::run(ctx, opts, async move {
            let _ = rx.await;
        }));
        Running {
            stop: Some(tx),
            task,
            metrics,
        }
    }

    pub fn sgcs(&self) -> Api<StaticGatewayConfiguration> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn lbs(&self) -> Api<GatewayLBConfiguration> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn vms(&self) -> Api<GatewayVMConfiguration> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub async fn create_sgc(&self, name: &str, spec: &str) -> StaticGatewayConfiguration {
        let sgc: StaticGatewayConfiguration = serde_saphyr::from_str(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: StaticGatewayConfiguration\nmetadata: {{name: {name}, namespace: {NS}}}\nspec: {{{spec}}}\n"
        ))
        .unwrap();
        self.sgcs()
            .create(&PostParams::default(), &sgc)
            .await
            .unwrap()
    }

    pub async fn patch_spec(&self, name: &str, spec: Value) {
        self.sgcs()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap();
    }

    pub async fn delete_sgc(&self, name: &str) {
        self.sgcs()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// Waits until `check` returns `Some`.
    pub async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The condition `type_` of an SGC, once it exists.
    pub async fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let sgc = self.sgcs().get_opt(name).await.ok()??;
        let c = sgc
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)?;
        Some((c.status, c.reason, c.message))
    }

    /// Waits for `Ready=True` and returns the SGC.
    pub async fn ready(&self, name: &str) -> StaticGatewayConfiguration {
        self.until(&format!("{name} to be Ready"), || async {
            let sgc = self.sgcs().get_opt(name).await.ok()??;
            let st = sgc.status.clone()?;
            let ready = st.conditions.iter().find(|c| c.type_ == "Ready")?;
            (ready.status == "True" && st.observed_generation == sgc.metadata.generation)
                .then_some(sgc)
        })
        .await
    }

    /// Waits until the SGC and its internal objects are gone.
    pub async fn gone(&self, name: &str) {
        self.until(
            &format!("{name} and its internal objects to be gone"),
            || async {
                let s = self.sgcs().get_opt(name).await.ok()?;
                let l = self.lbs().get_opt(name).await.ok()?;
                let v = self.vms().get_opt(name).await.ok()?;
                (s.is_none() && l.is_none() && v.is_none()).then_some(())
            },
        )
        .await
    }

    /// IDs of every emulated Azure resource.
    pub fn resource_ids(&self) -> Vec<String> {
        let inv = self.emu.inventory();
        let mut ids: Vec<String> = inv["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_ascii_lowercase())
            .collect();
        ids.sort();
        ids
    }

    /// A resource from the inventory by ID suffix (case-insensitive).
    pub fn resource(&self, id_suffix: &str) -> Option<Value> {
        let suffix = id_suffix.to_ascii_lowercase();
        self.emu.inventory()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["id"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .ends_with(&suffix)
            })
            .cloned()
    }

    /// The gateway load balancer (GET through ARM), if it exists.
    pub async fn load_balancer(&self) -> Option<egress_azure::models::LoadBalancer> {
        use egress_azure::LoadBalancers;
        self.arm
            .get_load_balancer(&settings().load_balancer_id)
            .await
            .ok()
    }

    /// Names of the ipConfigurations of every instance's NIC configuration, per instance.
    pub async fn instance_ipconfigs(&self) -> Vec<Vec<String>> {
        use egress_azure::ScaleSetVms;
        let vmss = ResourceGroupId::new(SUB, "rg-egress").scale_set("gw-vmss");
        let vms = self.arm.list_scale_set_vms(&vmss).await.unwrap();
        vms.iter()
            .map(|vm| {
                vm.properties
                    .network_profile_configuration
                    .as_ref()
                    .unwrap()
                    .network_interface_configurations[0]
                    .properties
                    .ip_configurations
                    .iter()
                    .map(|c| c.name.clone().unwrap())
                    .collect()
            })
            .collect()
    }

    /// Names of the model's ipConfigurations.
    pub async fn model_ipconfigs(&self) -> Vec<String> {
        use egress_azure::ScaleSets;
        let vmss = ResourceGroupId::new(SUB, "rg-egress").scale_set("gw-vmss");
        let v = self.arm.get_scale_set(&vmss).await.unwrap();
        v.network_profile()
            .unwrap()
            .network_interface_configurations[0]
            .properties
            .ip_configurations
            .iter()
            .map(|c| c.name.clone().unwrap())
            .collect()
    }

    /// Events about an SGC, as `(type, reason)`.
    pub async fn events(&self, name: &str) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), NS);
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
            .collect()
    }
}
