//! Running the pinned helm (`.tools/bin/helm`, installed by `hack/helm.sh`) offline:
//! `helm template` and `helm lint --strict` with `--set` values.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::manifests::{self, ManifestError};

/// Release namespace used by the tests.
pub const NAMESPACE: &str = "kube-egress-gateway-system";
/// Kubernetes version rendered for (the chart needs 1.31 or newer).
pub const KUBE_VERSION: &str = "1.32.0";
/// The values without defaults, for renders that should succeed.
pub const REQUIRED: &[&str] = &[
    "azureConfig.subscriptionId=00000000-0000-0000-0000-000000000000",
    "azureConfig.resourceGroup=MC_rg_cluster_eastus",
    "azureConfig.location=eastus",
    "azureConfig.vnetName=aks-vnet",
    "azureConfig.subnetName=aks-subnet",
];

/// Why helm could not be used or refused the chart.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The binary is missing.
    #[error("failed to find the pinned helm at {0}: run `make deps` (hack/helm.sh)")]
    Missing(PathBuf),
    /// It could not be started.
    #[error("failed to run {0}")]
    Spawn(PathBuf, #[source] std::io::Error),
    /// It ran and failed.
    #[error("helm {command} failed: {stderr}")]
    Failed {
        /// Subcommand.
        command: String,
        /// Its stderr (and stdout for lint).
        stderr: String,
    },
    /// The output was not YAML.
    #[error("failed to parse the rendered chart")]
    Parse(#[from] ManifestError),
}

/// Path of the pinned helm.
pub fn helm_path() -> PathBuf {
    crate::workspace_root().join(".tools/bin/helm")
}

fn run(args: &[String]) -> Result<String, HelmError> {
    let helm = helm_path();
    if !helm.exists() {
        return Err(HelmError::Missing(helm));
    }
    let out = Command::new(&helm)
        .args(args)
        .output()
        .map_err(|e| HelmError::Spawn(helm.clone(), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(HelmError::Failed {
            command: args.first().cloned().unwrap_or_default(),
            stderr: format!("{}{}", String::from_utf8_lossy(&out.stderr), stdout),
        });
    }
    Ok(stdout)
}

fn set_args(sets: &[&str]) -> Vec<String> {
    sets.iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect()
}

/// `helm template` (CRDs included) with these `--set` values; the rendered YAML text.
pub fn template_text(sets: &[&str]) -> Result<String, HelmError> {
    let mut args: Vec<String> = [
        "template",
        "kube-egress-gateway",
        &crate::chart_dir().display().to_string(),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--include-crds",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(set_args(sets));
    run(&args)
}

/// `helm template` parsed into objects.
pub fn template(sets: &[&str]) -> Result<Vec<Value>, HelmError> {
    Ok(manifests::parse(&template_text(sets)?)?)
}

/// `helm template` with [`REQUIRED`] plus these values.
pub fn template_with_required(sets: &[&str]) -> Result<Vec<Value>, HelmError> {
    let all: Vec<&str> = REQUIRED.iter().chain(sets.iter()).copied().collect();
    template(&all)
}

/// `helm lint --strict` with these values; its report.
pub fn lint(sets: &[&str]) -> Result<String, HelmError> {
    let mut args = vec![
        "lint".to_owned(),
        "--strict".to_owned(),
        crate::chart_dir().display().to_string(),
    ];
    args.extend(set_args(sets));
    run(&args)
}
