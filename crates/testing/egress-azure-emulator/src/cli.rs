//! The binary's command line (flags with environment fallbacks) and its small file helper.
//! Only `main.rs` uses this module; the library's API is `EmulatorConfig`.

use anyhow::Context;
use clap::Parser;
use egress_azure_emulator::{ResponseForm, parse_response_form};
use std::path::{Path, PathBuf};

/// Azure Resource Manager + IMDS emulator for kube-egress-gateway tests.
///
/// Without --seed the inventory is: subscription 00000000-0000-0000-0000-000000000000,
/// location eastus, resource group rg-egress, VNet aks-vnet 10.0.0.0/16 with subnet aks-subnet
/// 10.0.0.0/24, scale set gw-vmss with two instances (computer names gw-vmss000000 and
/// gw-vmss000001, tags aks-managed-poolName=gwpool, aks-managed-gatewayIPPrefixSize=31), BYO
/// public IP prefix byo-prefix 192.0.2.0/31; new prefixes come from 203.0.113.0/24, standalone
/// public IPs from 198.51.100.0/24. Admin endpoints: /admin/inventory, /admin/ipmap,
/// /admin/lbmap, /admin/requests, /admin/faults, /admin/responseForms.
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
pub struct Args {
    /// Seed file (YAML or JSON) describing the starting inventory.
    #[arg(long, env = "EMULATOR_SEED")]
    pub seed: Option<PathBuf>,
    /// Port to listen on (0 = any free port).
    #[arg(long, env = "EMULATOR_PORT", default_value_t = 0)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Polls before a long-running operation completes.
    #[arg(long, env = "EMULATOR_LRO_POLLS", default_value_t = 2)]
    pub lro_polls: u32,
    /// Retry-After seconds sent with long-running operation answers.
    #[arg(long, env = "EMULATOR_RETRY_AFTER", default_value_t = 0)]
    pub retry_after: u64,
    /// Reject ARM requests without a bearer token.
    #[arg(long, env = "EMULATOR_REQUIRE_AUTH")]
    pub require_auth: bool,
    /// Probability (0..=1) that a request gets one of --fault-kinds.
    #[arg(long, env = "EMULATOR_FAULT_RATE")]
    pub fault_rate: Option<f64>,
    /// Fault kinds for --fault-rate: 429, 500, drop, slowLro, failLro (comma-separated).
    #[arg(long, env = "EMULATOR_FAULT_KINDS", default_value = "429,500")]
    pub fault_kinds: String,
    /// Only fault operations matching this glob (e.g. 'LoadBalancers.*').
    #[arg(long, env = "EMULATOR_FAULT_OPERATION")]
    pub fault_operation: Option<String>,
    /// Response form of long-running operations, OPERATION=FORM (repeatable; OPERATION may be
    /// a glob): async, location, both, accepted, polled or done, as the operation's REST
    /// specification allows (see docs/azure-emulator.md).
    #[arg(long = "response-form", env = "EMULATOR_RESPONSE_FORMS", value_delimiter = ',', value_parser = parse_form)]
    pub response_forms: Vec<(String, ResponseForm)>,
    /// Items per list page; longer lists continue at nextLink.
    #[arg(long, env = "EMULATOR_PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Serve https with a throwaway CA; its certificate (PEM) is written to --ca-file.
    #[arg(long, env = "EMULATOR_TLS", requires = "ca_file_or_url_file")]
    pub tls: bool,
    /// Where --tls writes the CA certificate (default: next to --url-file, as FILE.ca.pem).
    #[arg(long, env = "EMULATOR_CA_FILE", group = "ca_file_or_url_file")]
    pub ca_file: Option<PathBuf>,
    /// Also write the base URL to this file (for scripts; stdout's first line has it too).
    #[arg(long, env = "EMULATOR_URL_FILE", group = "ca_file_or_url_file")]
    pub url_file: Option<PathBuf>,
}

pub fn parse_form(s: &str) -> Result<(String, ResponseForm), String> {
    parse_response_form(s).map_err(|e| e.to_string())
}

/// Writes `text` to `path` atomically (a reader never sees half a file).
pub fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))
}
