//! Printing: `-o table` (aligned text for people), `-o json` and `-o yaml` (the report types
//! serialised as they are, for scripts).

use std::fmt::Write;

use serde::Serialize;

use crate::explain::Explanation;
use crate::status::StatusReport;

/// Output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Serialises `value` as `format` (table handled by the caller).
pub fn structured<T: Serialize>(value: &T, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        _ => serde_saphyr::to_string(value).unwrap_or_default(),
    }
}

/// Left-aligned columns separated by two spaces.
pub fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

/// The status report as text.
pub fn status_table(r: &StatusReport) -> String {
    let mut out = String::new();
    if r.gateways.is_empty() {
        return "no StaticGatewayConfiguration found\n".into();
    }
    for g in &r.gateways {
        let ready = if g.ready { "Ready" } else { "NOT READY" };
        let _ = writeln!(
            out,
            "{}/{}  {ready}  egress {}  endpoint {}",
            g.namespace,
            g.name,
            dash(g.egress_ip_prefix.as_deref()),
            dash(g.endpoint.as_deref())
        );
        if !g.ready {
            let _ = writeln!(out, "  {}: {}", g.reason, g.message);
        }
        let mut rows = vec![
            [
                "NODE",
                "PRIVATE IP",
                "PUBLIC IP",
                "DAEMON",
                "GATEWAY",
                "PEERS",
                "MISSING",
                "HANDSHAKES<3M",
                "DRIFT<10M",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for n in &g.nodes {
            rows.push(vec![
                n.node.clone(),
                dash(n.private_ip.as_deref()),
                dash(n.public_ip.as_deref()),
                n.daemon.cell(),
                if n.gateway_ready {
                    n.interface.clone().unwrap_or_default()
                } else {
                    "not ready".into()
                },
                n.peers.to_string(),
                n.missing.to_string(),
                n.recent_handshakes.to_string(),
                n.recent_drift.to_string(),
            ]);
        }
        for line in columns(&rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
        let pods: Vec<String> = g
            .pods
            .iter()
            .map(|p| match p.phase.as_deref() {
                Some("Programmed") | None => p.name.clone(),
                Some(ph) => format!("{} ({ph})", p.name),
            })
            .collect();
        let _ = writeln!(
            out,
            "  pods ({}): {}",
            pods.len(),
            if pods.is_empty() {
                "-".into()
            } else {
                pods.join(", ")
            }
        );
        for p in &g.problems {
            let _ = writeln!(out, "  problem: {p}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{} problem(s)", r.problems());
    out
}

/// The explanation as text.
pub fn explain_table(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Pod          {} (node {}, IP {})",
        e.pod,
        dash(e.node.as_deref()),
        dash(e.pod_ip.as_deref())
    );
    if let Some(g) = &e.gateway {
        let _ = writeln!(out, "Gateway      {} ({}: {})", g.name, g.reason, g.detail);
    }
    if let Some(v6) = e.routing.as_ref().and_then(|r| r.ipv6_summary()) {
        let _ = writeln!(out, "IPv6         {} -> {v6}", dash(e.pod_ipv6.as_deref()));
    }
    if let Some(d) = &e.destination {
        let _ = writeln!(out, "Destination  {}: {}", d.ip, d.why);
    }
    if e.gateway.is_some() && !e.nodes.is_empty() {
        let via = e.carried_by.as_ref().map_or_else(
            || "no node carries the tunnel right now".into(),
            |n| format!("via gateway node {n}"),
        );
        let ips = if e.egress_ips.is_empty() {
            "-".into()
        } else {
            e.egress_ips.join(", ")
        };
        let _ = writeln!(out, "Egress IP    {ips} ({via})");
        let mut rows = vec![
            [
                "NODE",
                "EGRESS IP",
                "DAEMON",
                "GATEWAY",
                "PEER",
                "HANDSHAKE",
                "",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for v in &e.nodes {
            rows.push(vec![
                v.node.node.clone(),
                dash(v.node.egress_ip.as_deref()),
                v.node.daemon.cell(),
                if v.node.gateway_ready {
                    v.node.interface.clone().unwrap_or_default()
                } else {
                    "not ready".into()
                },
                v.peer.clone(),
                v.handshake_age_seconds
                    .map_or_else(|| "never".into(), |a| format!("{a}s ago")),
                if v.carries {
                    "<- carries the tunnel".into()
                } else {
                    String::new()
                },
            ]);
        }
        let _ = writeln!(out, "Gateway nodes");
        for line in columns(&rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "Hops");
    for h in &e.hops {
        let _ = writeln!(out, "  [{:<4}] {}: {}", h.state.tag(), h.name, h.detail);
    }
    let broken: Vec<&str> = e
        .hops
        .iter()
        .filter(|h| h.state == crate::explain::HopState::Fail)
        .map(|h| h.name.as_str())
        .collect();
    if broken.is_empty() {
        let _ = writeln!(out, "Result       {} problem(s)", e.problems());
    } else {
        let _ = writeln!(out, "Result       broken: {}", broken.join("; "));
    }
    out
}
