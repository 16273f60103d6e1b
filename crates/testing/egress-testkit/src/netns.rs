//! Throwaway named network namespaces made with `ip netns` that delete themselves on drop, a
//! comparable snapshot of one (what "left clean" compares), and `ip` command helpers. For
//! namespaces wired with the data plane's own executors, see [`crate::Lab`].

use std::process::Command;

use egress_dataplane::NetnsRef;
use serde_json::Value;

/// Runs `ip <args>` and insists on success.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Output of `ip <args>`.
pub fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway named namespace `<tag>-<pid>` with `lo` up; deleted on drop. Tags must be
/// unique within one test process.
#[derive(Debug)]
pub struct Netns(pub String);

impl Netns {
    /// Creates the namespace `<tag>-<pid>` and sets `lo` up.
    pub fn new(tag: &str) -> Self {
        let name = format!("{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Self(name)
    }

    /// The namespace file, as a CNI runtime passes it in `CNI_NETNS`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// The namespace for the data plane's executors and [`crate::run_in_netns`].
    pub fn netns_ref(&self) -> NetnsRef {
        NetnsRef::Named(self.0.parse().unwrap())
    }

    /// Links (name, kind, MTU), IPv4 addresses, IPv4 routes of all tables, IPv4 rules and
    /// nftables tables: what "clean" compares (carrier state, shown by routes as `linkdown`, and
    /// IPv6 link-local addresses settle on their own).
    pub fn snapshot(&self) -> String {
        let links: Value =
            serde_json::from_str(&ip_out(&["-n", &self.0, "-j", "-d", "link", "show"])).unwrap();
        let mut out: String = links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{} {} {}\n",
                    l["ifname"], l["linkinfo"]["info_kind"], l["mtu"]
                )
            })
            .collect();
        let addrs: Value =
            serde_json::from_str(&ip_out(&["-n", &self.0, "-j", "addr", "show"])).unwrap();
        for l in addrs.as_array().unwrap() {
            for a in l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["family"] == "inet")
            {
                out.push_str(&format!(
                    "{} {}/{}\n",
                    l["ifname"], a["local"], a["prefixlen"]
                ));
            }
        }
        // Routes print " linkdown" while the veth peer's carrier settles: state, not config.
        out.push_str(
            &ip_out(&["-n", &self.0, "-4", "route", "show", "table", "all"])
                .replace(" linkdown", ""),
        );
        out.push_str(&ip_out(&["-n", &self.0, "-4", "rule"]));
        let nft = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "list", "tables"])
            .output()
            .unwrap();
        out.push_str(&String::from_utf8_lossy(&nft.stdout));
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
