//! What tests and measurements do to a running simulation beyond start and stop: killing a
//! gateway node as a VM dies (its processes killed, its link cut), reading the emulator's
//! admin views, finding which node an egress address belongs to, and dumping a gateway node's
//! kernel state (links, addresses, nftables) for assertions.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use super::Cluster;
use crate::{components, netns, services};

/// How the network answers for a killed node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// Host unreachable from the router: a new connection to the node fails at once.
    Unreachable,
    /// Nothing, as Azure for a dead VM: every prober waits for its timeout, the load
    /// balancer's (the probe interval, at most 2 s) included.
    Silent,
}

impl Cluster {
    /// GET an emulator admin view (`/admin/inventory`, `/admin/ipmap`, `/admin/lbmap`).
    pub async fn emulator_get(&self, path: &str) -> Result<Value> {
        let (status, body) = services::get(self.emulator, path)
            .await
            .map_err(|e| anyhow!("failed to GET {path} from the emulator: {e}"))?;
        if status != 200 {
            return Err(anyhow!("emulator answered {status} to GET {path}"));
        }
        serde_json::from_slice(&body).with_context(|| format!("emulator sent bad JSON for {path}"))
    }

    /// POST JSON to an emulator admin endpoint (e.g. `/admin/faults`); returns the answer.
    pub async fn emulator_post(&self, path: &str, body: &Value) -> Result<Value> {
        let req = hyper::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", self.emulator.to_string())
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))?;
        let resp = services::send(self.emulator, req)
            .await
            .map_err(|e| anyhow!("failed to POST {path} to the emulator: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await?
            .to_bytes();
        if !(200..300).contains(&status) {
            return Err(anyhow!(
                "emulator answered {status} to POST {path}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// The node whose ipConfiguration has `ip` as its public or private address.
    pub async fn node_of_ip(&self, ip: &str) -> Result<Option<String>> {
        let map = self.emulator_get("/admin/ipmap").await?;
        let found = map["mappings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["publicIp"] == ip || m["privateIp"] == ip)
            .and_then(|m| m["computerName"].as_str())
            .map(str::to_string);
        if found.is_some() {
            return Ok(found);
        }
        // Private-mode addresses have no public IP, so they are not in the map.
        let inv = self.emulator_get("/admin/inventory").await?;
        let ip: std::net::Ipv4Addr = ip.parse().with_context(|| format!("not an IPv4 {ip}"))?;
        Ok(crate::fabric::parse_instance_ips(&inv)
            .into_iter()
            .find(|(_, _, a)| *a == ip)
            .and_then(|(vmss, i, _)| {
                self.topo
                    .nodes
                    .iter()
                    .find(|n| n.spec.vmss.eq_ignore_ascii_case(&vmss) && n.spec.instance == i)
                    .map(|n| n.spec.name.clone())
            }))
    }

    /// Kills a component process by name prefix with SIGKILL (a crash: no graceful stop);
    /// [`Cluster::restart_process`] starts it again.
    pub fn crash_process(&mut self, name_prefix: &str) -> Result<i32> {
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.record.name.starts_with(name_prefix) && crate::state::is_alive(&p.record))
            .ok_or_else(|| anyhow!("no running component named {name_prefix}"))?;
        let pid = p.pid();
        kill(Pid::from_raw(pid), Signal::SIGKILL)
            .with_context(|| format!("failed to kill {}", p.record.name))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while p.check_running().is_ok() {
            if std::time::Instant::now() > deadline {
                return Err(anyhow!("{} survived SIGKILL", p.record.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pid)
    }

    /// Kills a gateway node as a VM dies: every process in its namespaces (the daemon and
    /// the wireguard-go it started) gets SIGKILL, no drain, and the router's link to it goes
    /// down, so probes and forwarded packets get no answer. The router answers packets for
    /// the node's address with host unreachable, so a new connection to it fails at once:
    /// the load balancer's prober (which runs in the router and would get that error from
    /// the down link anyway) learns of the death at its next probe; the CNI managers' kept-
    /// alive probe connections do not see the error and wait for their timeout (prober.rs).
    /// In Azure both would wait for their timeouts: [`Death::Silent`].
    pub fn kill_node(&mut self, name: &str) -> Result<()> {
        self.kill_node_as(name, Death::Unreachable)
    }

    /// [`Cluster::kill_node`], with the router answering as `death` says.
    pub fn kill_node_as(&mut self, name: &str, death: Death) -> Result<()> {
        let node = self
            .topo
            .node(name)
            .ok_or_else(|| anyhow!("no node {name}"))?
            .clone();
        match death {
            Death::Unreachable => netns::batch(
                Some(&self.topo.vnet),
                &[
                    format!("link set {} down", node.router_if),
                    format!("route replace unreachable {}/32", node.primary_ip),
                ],
            )?,
            // The node's own end of its link goes down: the router still routes to it and
            // its packets are dropped on the way, unanswered, for the router's own prober too.
            Death::Silent => netns::batch(Some(&node.ns), &["link set eth0 down".to_string()])?,
        }
        let inodes: Vec<u64> = [node.ns.clone(), components::gateway_netns(&node)]
            .iter()
            .filter_map(|n| netns::inode(n))
            .collect();
        // wireguard-go removes its UAPI socket only when it exits cleanly; a dead machine's
        // sockets go with it, so the killed ones are removed below.
        let pids = netns::pids_in(&inodes);
        let sockets: Vec<String> = pids
            .iter()
            .filter_map(|p| crate::teardown::wireguard_socket(*p))
            .collect();
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !netns::pids_in(&inodes).is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(anyhow!("processes of {name} survived SIGKILL"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in &mut self.procs {
            p.reap();
        }
        for s in sockets {
            let _ = std::fs::remove_file(s);
        }
        Ok(())
    }

    /// A gateway node's kernel state as text: links, addresses and the nftables ruleset of
    /// its namespace and of its gateway namespace (empty parts where one does not exist).
    pub fn node_state(&self, name: &str) -> Result<String> {
        let node = self
            .topo
            .node(name)
            .ok_or_else(|| anyhow!("no node {name}"))?;
        let mut out = String::new();
        for ns in [node.ns.clone(), components::gateway_netns(node)] {
            if !netns::exists(&ns) {
                continue;
            }
            for args in [
                &["ip", "-o", "link"][..],
                &["ip", "-o", "addr"],
                &["ip", "-o", "-6", "route"],
                &["nft", "list", "ruleset"],
            ] {
                let o = std::process::Command::new("ip")
                    .args(["netns", "exec", &ns])
                    .args(args)
                    .output()
                    .with_context(|| format!("failed to run {args:?} in {ns}"))?;
                out.push_str(&format!("# {ns}: {}\n", args.join(" ")));
                out.push_str(&String::from_utf8_lossy(&o.stdout));
            }
        }
        Ok(out)
    }
}
