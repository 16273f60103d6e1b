//! The run report: every SGC with its egress prefix and readiness, every pod with its node,
//! SGC, the source address the internet server saw, whether that is inside the SGC's prefix,
//! and how long the pod took to become ready; as a table or JSON, plus the verdict `run` exits
//! with.

use std::net::{IpAddr, SocketAddr};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde_json::Value;

/// One SGC.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SgcRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `status.egressIpPrefix`.
    pub egress_ip_prefix: Option<String>,
    /// Condition `Ready` is True.
    pub ready: bool,
    /// `status.egressIpv6Prefix` (SGCs with IPv6 egress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_ipv6_prefix: Option<String>,
    /// Whether the internet echo server should see this SGC's prefix for its pods: public
    /// IPs, and the server's address tunnelled (`staticEgressGateway` and not in
    /// `excludeCidrs`, or `azureNetworking` and in them). Otherwise its pods leave as the
    /// outbound IP. Not part of the JSON report.
    #[serde(skip)]
    pub internet_sees_prefix: bool,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Node.
    pub node: String,
    /// SGC named by the annotation.
    pub sgc: Option<String>,
    /// Source address the internet server saw.
    pub egress_ip: Option<String>,
    /// Whether `egressIp` is in the SGC's prefix (null for pods without an SGC).
    pub in_prefix: Option<bool>,
    /// Dual-stack pods: the source address the internet server's IPv6 address saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_ipv6: Option<String>,
    /// Whether `egressIpv6` is in the SGC's IPv6 prefix (absent unless the SGC has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_ipv6_prefix: Option<bool>,
    /// Milliseconds from the kubelet seeing the pod to ready.
    pub ready_ms: Option<u64>,
    /// Why the pod is not ready or could not connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Cluster outbound IP.
    pub outbound_ip: String,
    /// Cluster outbound IPv6 (dual-stack clusters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_ipv6: Option<String>,
    /// SGCs.
    pub sgcs: Vec<SgcRow>,
    /// Pods.
    pub pods: Vec<PodRow>,
}

/// The StaticGatewayConfiguration resource.
pub fn sgc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "egressgateway.kubernetes.azure.com",
            "v1alpha1",
            "StaticGatewayConfiguration",
        ),
        "staticgatewayconfigurations",
    )
}

/// Reads every SGC.
pub async fn sgcs(client: &kube::Client) -> Result<Vec<SgcRow>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &sgc_resource());
    let list = api.list(&Default::default()).await?;
    let mut rows: Vec<SgcRow> = list
        .items
        .into_iter()
        .map(|o| {
            let status = o.data.get("status").cloned().unwrap_or(Value::Null);
            let spec = o.data.get("spec").cloned().unwrap_or(Value::Null);
            SgcRow {
                internet_sees_prefix: internet_sees_prefix(&spec),
                namespace: o.metadata.namespace.clone().unwrap_or_default(),
                name: o.metadata.name.clone().unwrap_or_default(),
                egress_ipv6_prefix: status["egressIpv6Prefix"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                egress_ip_prefix: status["egressIpPrefix"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                ready: status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True"),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

/// See [`SgcRow::internet_sees_prefix`].
pub fn internet_sees_prefix(spec: &Value) -> bool {
    let server = crate::seed::INTERNET_SERVER_IP;
    let excluded = spec["excludeCidrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str()?.parse::<ipnet::Ipv4Net>().ok())
        .any(|c| c.contains(&server));
    let tunnelled = if spec["defaultRoute"] == "azureNetworking" {
        excluded
    } else {
        !excluded
    };
    spec["provisionPublicIps"].as_bool().unwrap_or(true) && tunnelled
}

/// Whether `ip` is inside an SGC's `egressIpPrefix` or `egressIpv6Prefix` (a CIDR, or private
/// IPs joined by `,`).
pub fn in_prefix(ip: &str, prefix: &str) -> bool {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return false;
    };
    prefix
        .split(',')
        .map(str::trim)
        .any(|p| match p.parse::<ipnet::IpNet>() {
            Ok(net) => net.contains(&addr),
            Err(_) => p.parse::<IpAddr>() == Ok(addr),
        })
}

/// The address of an echo line (`<ip>:<port>` or `[<ipv6>]:<port>`), or the line itself.
pub fn echoed_ip(line: &str) -> String {
    line.parse::<SocketAddr>().map_or_else(
        |_| line.rsplit_once(':').map_or(line, |(ip, _)| ip).to_string(),
        |a| a.ip().to_string(),
    )
}

impl Report {
    /// Problems that make `run` fail: SGCs not ready, pods not ready or not connected, pods
    /// with an SGC leaving outside its prefix (or, for SGCs whose internet traffic is not
    /// tunnelled to a public prefix, not as the outbound IP), pods without one not leaving as
    /// the outbound IP.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.sgcs.iter().filter(|s| !s.ready) {
            out.push(format!("SGC {}/{} is not ready", s.namespace, s.name));
        }
        for p in &self.pods {
            let who = format!("pod {}/{}", p.namespace, p.name);
            let untunnelled = p.sgc.as_ref().is_some_and(|s| {
                self.sgcs
                    .iter()
                    .any(|r| r.namespace == p.namespace && &r.name == s && !r.internet_sees_prefix)
            });
            match (&p.egress_ip, &p.sgc, p.in_prefix) {
                (Some(ip), Some(sgc), _) if untunnelled && *ip != self.outbound_ip => out.push(
                    format!("{who} leaves as {ip}, not the outbound IP {} (SGC {sgc} does not tunnel internet traffic to a public prefix)", self.outbound_ip),
                ),
                (Some(_), Some(_), _) if untunnelled => {}
                (None, _, _) => out.push(format!(
                    "{who}: {}",
                    p.error.as_deref().unwrap_or("no connection")
                )),
                (Some(_), Some(sgc), Some(false) | None) => {
                    out.push(format!("{who} does not leave from the prefix of SGC {sgc}"))
                }
                (Some(ip), None, _) if *ip != self.outbound_ip => out.push(format!(
                    "{who} leaves as {ip}, not the outbound IP {}",
                    self.outbound_ip
                )),
                _ => {}
            }
            out.extend(self.ipv6_problem(p));
        }
        out
    }

    /// A dual-stack pod's IPv6 egress: from its SGC's IPv6 prefix when the SGC has one (the
    /// report's echo address is never excluded), else as the outbound IPv6.
    fn ipv6_problem(&self, p: &PodRow) -> Option<String> {
        let outbound = self.outbound_ipv6.as_deref()?;
        let seen = p.egress_ipv6.as_deref()?;
        let who = format!("pod {}/{}", p.namespace, p.name);
        match p.in_ipv6_prefix {
            Some(true) => None,
            Some(false) => Some(format!(
                "{who} leaves IPv6 as {seen}, not from the IPv6 prefix of SGC {}",
                p.sgc.as_deref().unwrap_or_default()
            )),
            None => (seen != outbound)
                .then(|| format!("{who} leaves IPv6 as {seen}, not the outbound IPv6 {outbound}")),
        }
    }

    /// The human-readable tables.
    pub fn table(&self) -> String {
        let mut out = format!("Cluster outbound IP: {}\n", self.outbound_ip);
        if let Some(v6) = &self.outbound_ipv6 {
            out.push_str(&format!("Cluster outbound IPv6: {v6}\n"));
        }
        out.push('\n');
        let v6 = self.outbound_ipv6.is_some();
        let sgc_rows: Vec<Vec<String>> = self
            .sgcs
            .iter()
            .map(|s| {
                let mut row = vec![
                    s.namespace.clone(),
                    s.name.clone(),
                    s.egress_ip_prefix.clone().unwrap_or_else(|| "-".into()),
                ];
                if v6 {
                    row.push(s.egress_ipv6_prefix.clone().unwrap_or_else(|| "-".into()));
                }
                row.push(s.ready.to_string());
                row
            })
            .collect();
        let sgc_headers: &[&str] = if v6 {
            &[
                "NAMESPACE",
                "SGC",
                "EGRESS PREFIX",
                "EGRESS IPV6 PREFIX",
                "READY",
            ]
        } else {
            &["NAMESPACE", "SGC", "EGRESS PREFIX", "READY"]
        };
        out.push_str(&render(sgc_headers, &sgc_rows));
        out.push('\n');
        let pod_rows: Vec<Vec<String>> = self
            .pods
            .iter()
            .map(|p| {
                let mut row = vec![
                    p.namespace.clone(),
                    p.name.clone(),
                    p.node.clone(),
                    p.sgc.clone().unwrap_or_else(|| "-".into()),
                    p.egress_ip.clone().unwrap_or_else(|| "-".into()),
                    p.in_prefix.map_or_else(|| "-".into(), |b| b.to_string()),
                ];
                if v6 {
                    row.push(p.egress_ipv6.clone().unwrap_or_else(|| "-".into()));
                    row.push(
                        p.in_ipv6_prefix
                            .map_or_else(|| "-".into(), |b| b.to_string()),
                    );
                }
                row.push(p.ready_ms.map_or_else(|| "-".into(), |m| m.to_string()));
                row.push(p.error.clone().unwrap_or_default());
                row
            })
            .collect();
        let mut pod_headers = vec!["NAMESPACE", "POD", "NODE", "SGC", "EGRESS IP", "IN PREFIX"];
        if v6 {
            pod_headers.extend(["EGRESS IPV6", "IN IPV6 PREFIX"]);
        }
        pod_headers.extend(["READY MS", "ERROR"]);
        out.push_str(&render(&pod_headers, &pod_rows));
        out
    }
}

fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", s.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn pod(sgc: Option<&str>, ip: Option<&str>, in_prefix: Option<bool>) -> PodRow {
        PodRow {
            namespace: "demo".into(),
            name: "p".into(),
            node: "n".into(),
            sgc: sgc.map(str::to_string),
            egress_ip: ip.map(str::to_string),
            in_prefix,
            egress_ipv6: None,
            in_ipv6_prefix: None,
            ready_ms: Some(5),
            error: None,
        }
    }

    #[test]
    fn prefix_membership_handles_cidrs_and_private_lists() {
        assert!(in_prefix("203.0.113.1", "203.0.113.0/31"));
        assert!(!in_prefix("203.0.113.2", "203.0.113.0/31"));
        assert!(in_prefix("10.224.0.15", "10.224.0.10,10.224.0.15"));
        assert!(!in_prefix("x", "10.0.0.0/8"));
    }

    #[test]
    fn verdict_and_json_shape() {
        let r = Report {
            outbound_ip: "198.51.100.200".into(),
            outbound_ipv6: None,
            sgcs: vec![SgcRow {
                namespace: "demo".into(),
                name: "gw".into(),
                egress_ip_prefix: Some("203.0.113.0/31".into()),
                ready: true,
                egress_ipv6_prefix: None,
                internet_sees_prefix: true,
            }],
            pods: vec![
                pod(Some("gw"), Some("203.0.113.0"), Some(true)),
                pod(None, Some("198.51.100.200"), None),
            ],
        };
        assert!(r.problems().is_empty());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["outboundIp"], "198.51.100.200");
        assert_eq!(v["sgcs"][0]["egressIpPrefix"], "203.0.113.0/31");
        assert_eq!(v["pods"][0]["inPrefix"], true);
        assert_eq!(v["pods"][1]["readyMs"], 5);
        assert!(v["pods"][1].get("error").is_none());
        let bad = Report {
            pods: vec![
                pod(None, Some("10.1.1.1"), None),
                pod(Some("gw"), None, None),
            ],
            ..r
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(bad.table().contains("EGRESS IP"));
    }

    #[test]
    fn private_and_azure_networking_sgcs_expect_the_outbound_ip_on_the_internet() {
        use serde_json::json;
        assert!(internet_sees_prefix(&json!({"provisionPublicIps": true})));
        assert!(!internet_sees_prefix(&json!({"provisionPublicIps": false})));
        assert!(!internet_sees_prefix(
            &json!({"provisionPublicIps": true, "excludeCidrs": ["192.0.2.0/24"]})
        ));
        assert!(!internet_sees_prefix(
            &json!({"provisionPublicIps": true, "defaultRoute": "azureNetworking"})
        ));
        assert!(internet_sees_prefix(&json!({"provisionPublicIps": true,
            "defaultRoute": "azureNetworking", "excludeCidrs": ["192.0.2.1/32"]})));
        let r = Report {
            outbound_ip: "198.51.100.200".into(),
            outbound_ipv6: None,
            sgcs: vec![SgcRow {
                namespace: "demo".into(),
                name: "gw".into(),
                egress_ip_prefix: Some("10.224.0.9,10.224.0.10".into()),
                ready: true,
                egress_ipv6_prefix: None,
                internet_sees_prefix: false,
            }],
            pods: vec![pod(Some("gw"), Some("198.51.100.200"), Some(false))],
        };
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["sgcs"][0].as_object().unwrap().len(),
            4,
            "the issue's four SGC fields only"
        );
        let wrong = Report {
            pods: vec![pod(Some("gw"), Some("10.224.0.9"), Some(true))],
            ..r
        };
        assert_eq!(wrong.problems().len(), 1, "{:?}", wrong.problems());
    }

    #[test]
    fn dual_stack_pods_are_checked_per_family() {
        let row = |sgc: Option<&str>, v6: &str, in6: Option<bool>| PodRow {
            egress_ipv6: Some(v6.into()),
            in_ipv6_prefix: in6,
            // IPv4 is fine (through a private-mode SGC) so only IPv6 is judged.
            ..pod(sgc, Some("198.51.100.200"), sgc.map(|_| true))
        };
        let r = Report {
            outbound_ip: "198.51.100.200".into(),
            outbound_ipv6: Some("2001:db8:4::200".into()),
            sgcs: vec![],
            pods: vec![row(None, "2001:db8:4::200", None)],
        };
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        assert!(r.table().contains("EGRESS IPV6"));
        assert_eq!(echoed_ip("[2001:db8::1]:4000"), "2001:db8::1");
        assert_eq!(echoed_ip("192.0.2.1:80"), "192.0.2.1");
        assert!(in_prefix("2001:db8:ff00::1", "2001:db8:ff00::/127"));
        assert!(!in_prefix("2001:db8:ff00::2", "2001:db8:ff00::/127"));
        let bad = Report {
            pods: vec![
                row(None, "fd00:10:244::5", None),
                row(Some("gw"), "2001:db8:4::200", Some(false)),
            ],
            ..r
        };
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    }
}
