//! Validation and defaulting of [`RawCloudConfig`]: required fields, auth mode selection,
//! contradictions, endpoint rules (https, or http only to loopback).

use azure_core::credentials::Secret;
use azure_core::http::Url;
use std::path::PathBuf;

use super::{
    AuthMode, AzureCloud, CloudConfig, ConfigError, DEFAULT_LOAD_BALANCER_NAME, Endpoints,
    RawCloudConfig,
};

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Trims, and treats blank as absent (the original trims every string).
fn clean(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn required(
    v: &Option<String>,
    field: &'static str,
    why: &'static str,
) -> Result<String, ConfigError> {
    let s = clean(v).ok_or(ConfigError::Missing { field, why })?;
    path_safe(&s, field)?;
    Ok(s)
}

/// Names become URL path segments; a `/`, `?` or `#` would silently address another resource.
fn path_safe(s: &str, field: &'static str) -> Result<(), ConfigError> {
    if s.contains(['/', '?', '#']) {
        return Err(ConfigError::Invalid {
            field,
            why: format!("{s:?} must be a plain name, without '/', '?' or '#'"),
        });
    }
    Ok(())
}

fn optional_name(v: &Option<String>, field: &'static str) -> Result<Option<String>, ConfigError> {
    let s = clean(v);
    if let Some(s) = &s {
        path_safe(s, field)?;
    }
    Ok(s)
}

impl RawCloudConfig {
    /// Validates and applies defaults.
    pub fn validate(&self, env: Env<'_>) -> Result<CloudConfig, ConfigError> {
        let cloud_name = required(
            &self.cloud,
            "cloud",
            "it selects the Azure cloud (e.g. AzurePublicCloud)",
        )?;
        let cloud = AzureCloud::parse(&cloud_name).ok_or_else(|| ConfigError::Invalid {
            field: "cloud",
            why: format!(
                "unknown cloud {cloud_name:?}; expected AzurePublicCloud, AzureChinaCloud, \
                 AzureUSGovernmentCloud or AzureStackCloud"
            ),
        })?;
        let resource_group = required(
            &self.resource_group,
            "resourceGroup",
            "it holds the gateway scale sets and managed public IP prefixes",
        )?;
        let vnet_resource_group = optional_name(&self.vnet_resource_group, "vnetResourceGroup")?
            .unwrap_or_else(|| resource_group.clone());
        let load_balancer_resource_group = optional_name(
            &self.load_balancer_resource_group,
            "loadBalancerResourceGroup",
        )?
        .unwrap_or_else(|| resource_group.clone());
        let load_balancer_name = optional_name(&self.load_balancer_name, "loadBalancerName")?
            .unwrap_or_else(|| DEFAULT_LOAD_BALANCER_NAME.to_string());
        Ok(CloudConfig {
            cloud,
            subscription_id: required(
                &self.subscription_id,
                "subscriptionId",
                "every ARM request is scoped to a subscription",
            )?,
            location: required(
                &self.location,
                "location",
                "new load balancers and public IP prefixes are created in it",
            )?,
            vnet_name: required(
                &self.vnet_name,
                "vnetName",
                "load balancer frontends are allocated from its subnet",
            )?,
            subnet_name: required(
                &self.subnet_name,
                "subnetName",
                "load balancer frontends are allocated from it",
            )?,
            resource_group,
            vnet_resource_group,
            load_balancer_name,
            load_balancer_resource_group,
            user_agent: clean(&self.user_agent),
            auth: self.auth_mode(env)?,
            endpoints: self.endpoints(cloud, env)?,
        })
    }

    fn auth_mode(&self, env: Env<'_>) -> Result<AuthMode, ConfigError> {
        let msi = self.use_managed_identity_extension.unwrap_or(false);
        let wi_flag = self
            .use_federated_workload_identity_extension
            .unwrap_or(false);
        let secret = clean(&self.aad_client_secret);
        let cert = clean(&self.aad_client_cert_path);
        let token_file = clean(&self.aad_federated_token_file)
            .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").filter(|s| !s.trim().is_empty()));
        let user_assigned = clean(&self.user_assigned_identity_id);

        if msi && wi_flag {
            return Err(ConfigError::Contradictory {
                first: "useManagedIdentityExtension",
                second: "useFederatedWorkloadIdentityExtension",
                why: "choose one identity: managed identity or workload identity",
            });
        }
        if msi {
            // AKS writes aadClientId/aadClientSecret "msi" next to the managed identity flag;
            // managed identity wins, as in the original.
            return Ok(AuthMode::ManagedIdentity {
                user_assigned_id: user_assigned,
            });
        }
        if user_assigned.is_some() {
            return Err(ConfigError::Contradictory {
                first: "userAssignedIdentityID",
                second: "useManagedIdentityExtension",
                why: "a user-assigned identity is only used with useManagedIdentityExtension: true",
            });
        }
        // Workload identity: explicit flag, or the AKS webhook's token file with no SP secret.
        let wi = wi_flag || (secret.is_none() && cert.is_none() && token_file.is_some());
        if wi {
            if secret.is_some() {
                return Err(ConfigError::Contradictory {
                    first: "useFederatedWorkloadIdentityExtension",
                    second: "aadClientSecret",
                    why: "workload identity uses a federated token, not a client secret",
                });
            }
            if cert.is_some() {
                return Err(ConfigError::Contradictory {
                    first: "useFederatedWorkloadIdentityExtension",
                    second: "aadClientCertPath",
                    why: "workload identity uses a federated token, not a certificate",
                });
            }
            return Ok(AuthMode::WorkloadIdentity {
                tenant_id: self.tenant(env, "AZURE_TENANT_ID")?,
                client_id: clean(&self.aad_client_id)
                    .or_else(|| env("AZURE_CLIENT_ID").filter(|s| !s.trim().is_empty()))
                    .ok_or(ConfigError::Missing {
                        field: "aadClientId",
                        why: "workload identity needs the client ID of the federated identity \
                              (or AZURE_CLIENT_ID)",
                    })?,
                token_file: PathBuf::from(token_file.ok_or(ConfigError::Missing {
                    field: "aadFederatedTokenFile",
                    why: "workload identity needs the projected service account token \
                          (or AZURE_FEDERATED_TOKEN_FILE)",
                })?),
            });
        }
        let client_id = clean(&self.aad_client_id).ok_or(ConfigError::Missing {
            field: "aadClientId",
            why: "without useManagedIdentityExtension or workload identity a service principal \
                  is used",
        })?;
        match (secret, cert) {
            (Some(_), Some(_)) => Err(ConfigError::Contradictory {
                first: "aadClientSecret",
                second: "aadClientCertPath",
                why: "a service principal authenticates with a secret or a certificate, not both",
            }),
            (Some(secret), None) => Ok(AuthMode::ClientSecret {
                tenant_id: self.tenant(env, "AZURE_TENANT_ID")?,
                client_id,
                secret: Secret::new(secret),
            }),
            (None, Some(path)) => {
                if !cfg!(feature = "client-certificate") {
                    return Err(ConfigError::Invalid {
                        field: "aadClientCertPath",
                        why: "certificate authentication needs egress-azure built with the \
                              `client-certificate` feature (OpenSSL)"
                            .to_string(),
                    });
                }
                Ok(AuthMode::ClientCertificate {
                    tenant_id: self.tenant(env, "AZURE_TENANT_ID")?,
                    client_id,
                    cert_path: PathBuf::from(path),
                    password: clean(&self.aad_client_cert_password).map(Secret::new),
                })
            }
            (None, None) => Err(ConfigError::Missing {
                field: "aadClientSecret",
                why: "a service principal needs aadClientSecret or aadClientCertPath (or set \
                      useManagedIdentityExtension / useFederatedWorkloadIdentityExtension)",
            }),
        }
    }

    fn tenant(&self, env: Env<'_>, var: &str) -> Result<String, ConfigError> {
        clean(&self.tenant_id)
            .or_else(|| env(var).filter(|s| !s.trim().is_empty()))
            .ok_or(ConfigError::Missing {
                field: "tenantId",
                why: "Entra ID token requests are made to the tenant",
            })
    }

    fn endpoints(&self, cloud: AzureCloud, env: Env<'_>) -> Result<Endpoints, ConfigError> {
        let defaults = cloud.default_endpoints();
        let arm_text = clean(&self.resource_manager_endpoint)
            .or_else(|| defaults.map(|d| d.0.to_string()))
            .ok_or(ConfigError::Missing {
                field: "resourceManagerEndpoint",
                why: "AzureStackCloud has no default Resource Manager endpoint",
            })?;
        let authority_text = clean(&self.active_directory_authority_host)
            .or_else(|| env("AZURE_AUTHORITY_HOST").filter(|s| !s.trim().is_empty()))
            .or_else(|| defaults.map(|d| d.1.to_string()))
            .ok_or(ConfigError::Missing {
                field: "activeDirectoryAuthorityHost",
                why: "AzureStackCloud has no default Entra authority host",
            })?;
        let resource_manager = parse_url(&arm_text, "resourceManagerEndpoint")?;
        let authority_host = parse_url(&authority_text, "activeDirectoryAuthorityHost")?;
        if authority_host.scheme() != "https" {
            return Err(ConfigError::Invalid {
                field: "activeDirectoryAuthorityHost",
                why: format!("{authority_text:?} must be https (azure_identity refuses http)"),
            });
        }
        let allow_flag = self.allow_insecure_http.unwrap_or(false);
        let allow_insecure_http = resource_manager.scheme() == "http";
        if allow_insecure_http && !allow_flag && !is_loopback(&resource_manager) {
            return Err(ConfigError::Invalid {
                field: "resourceManagerEndpoint",
                why: format!(
                    "{arm_text:?} is plain http to a non-loopback host; bearer tokens would be \
                     sent in clear (set allowInsecureHttp: true only for a test emulator)"
                ),
            });
        }
        // The audience of public ARM is historically the endpoint itself; sovereign clouds too.
        let audience = clean(&self.resource_manager_audience).unwrap_or_else(|| {
            match (defaults, clean(&self.resource_manager_endpoint)) {
                (Some((arm, _)), None) => arm.to_string(),
                _ => resource_manager.as_str().to_string(),
            }
        });
        let token_scope = format!("{}/.default", audience.trim_end_matches('/'));
        Ok(Endpoints {
            resource_manager,
            authority_host,
            token_scope,
            allow_insecure_http,
        })
    }
}

fn parse_url(text: &str, field: &'static str) -> Result<Url, ConfigError> {
    let mut url = Url::parse(text).map_err(|e| ConfigError::Invalid {
        field,
        why: format!("{text:?} is not a URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::Invalid {
            field,
            why: format!("{text:?} must be an http(s) URL with a host"),
        });
    }
    // A base URL without a trailing slash would lose its last segment on `join`.
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// Whether the URL's host is loopback (where plain http carries no token off the machine).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
