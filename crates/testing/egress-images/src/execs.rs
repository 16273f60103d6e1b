//! Which programs the shipped components execute, found in the code and the chart: every
//! source file of a production crate that starts a process (compared with [`EXEC_SITES`], so a
//! new one fails the tests until it is listed and its program is in the right image), and the
//! commands of the chart's shell scripts (init containers).

use std::path::{Path, PathBuf};

/// Code that starts processes. Files naming none of these start none.
pub const EXEC_PATTERNS: [&str; 7] = [
    "Command::new(",
    "std::process::Command",
    "tokio::process",
    "CommandExt",
    "helper::apply_ruleset",
    "helper::get_current_ruleset",
    "unistd::exec",
];

/// Every place our production code starts a process: the file (relative to the workspace),
/// the program, and the images whose binaries run that code. The plugin's uses of the same
/// files run on the node, not in an image (docs/install.md lists the node's programs).
pub const EXEC_SITES: [(&str, &str, &[&str]); 2] = [
    // `nft -j -f -` and `nft -j list ...` (nftables crate helpers use the same program): the
    // daemon's gateways, and the CNI manager attaching running pods (egress-pod-tunnel).
    (
        "crates/egress-dataplane/src/exec/nft.rs",
        "nft",
        &["egress-gateway-daemon", "egress-cni-manager"],
    ),
    // The userspace WireGuard backend's daemons (wireguard-control would start the same): the
    // daemon's gateways, and the CNI manager's attaches with that backend.
    (
        "crates/egress-dataplane/src/wireguard/userspace.rs",
        "wireguard-go",
        &["egress-gateway-daemon", "egress-cni-manager"],
    ),
];

/// Production source files (crates/*/src, not crates/testing) that contain an exec pattern,
/// relative to `root`, sorted.
pub fn files_that_exec(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    if let Ok(crates) = std::fs::read_dir(root.join("crates")) {
        for c in crates.flatten() {
            if c.file_name() != "testing" {
                rust_files(&c.path().join("src"), &mut files);
            }
        }
    }
    let mut out: Vec<String> = files
        .into_iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .is_ok_and(|t| EXEC_PATTERNS.iter().any(|p| code_contains(&t, p)))
        })
        .filter_map(|f| f.strip_prefix(root).ok().map(|p| p.display().to_string()))
        .collect();
    out.sort();
    out
}

/// Whether a pattern occurs outside `//` comments.
fn code_contains(text: &str, pattern: &str) -> bool {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .any(|l| l.contains(pattern))
}

/// Every `.rs` file below `dir` (none when it cannot be read), sorted.
pub fn rust_files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    rust_files(dir, &mut out);
    out.sort();
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !is_test_module(&p) {
            out.push(p);
        }
    }
}

/// Files of unit tests (`tests.rs`, `*_tests.rs`, included with `#[cfg(test)] #[path]`): they
/// are compiled only into test binaries, so the processes they start are no image's business.
fn is_test_module(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "tests.rs" || n.ends_with("_tests.rs"))
}

/// Shell builtins of dash and busybox sh that the scripts may use without a program.
const BUILTINS: [&str; 10] = [
    "[", "test", "echo", "printf", "exit", "set", "cd", "true", "false", ":",
];

/// The programs a `sh -c` script runs: the first word of every simple command (split on
/// newlines, `;`, `&&`, `||`, `|`), not builtins, following `ip netns exec NAME PROGRAM` and
/// `sh -c 'SCRIPT'` into their commands. Enough for the chart's scripts, not a shell parser.
pub fn script_programs(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for segment in split_commands(script) {
        command_programs(&words(&segment), &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn command_programs(words: &[String], out: &mut Vec<String>) {
    let Some(first) = words.first() else { return };
    if first == "[" {
        // `[ ... ]` then `|| cmd` was split off already; nothing else here.
        return;
    }
    if !BUILTINS.contains(&first.as_str()) {
        out.push(first.rsplit('/').next().unwrap_or(first).to_string());
    }
    let rest = &words[1..];
    if first.ends_with("ip") && rest.len() >= 3 && rest[0] == "netns" && rest[1] == "exec" {
        command_programs(&rest[3..], out);
    } else if first.ends_with("sh") && rest.len() >= 2 && rest[0] == "-c" {
        for segment in split_commands(&rest[1]) {
            command_programs(&self::words(&segment), out);
        }
    }
}

/// Splits a script into simple commands, outside single quotes.
fn split_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            '\n' | ';' if !quoted => out.push(std::mem::take(&mut cur)),
            '&' | '|' if !quoted => {
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Words of a simple command; a single-quoted word keeps its spaces, without the quotes;
/// redirections (`> file`) end the words.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '>' | '<' if !quoted => break,
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() && !quoted {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_gateway_init_script_runs_ip_and_sh() {
        let s = "[ -e /run/netns/gw ] || ip netns add gw\nip netns exec gw sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'\n";
        assert_eq!(script_programs(s), ["ip", "sh"]);
    }

    #[test]
    fn the_install_script_runs_cp_chmod_mv() {
        let s = "cp /a /b.tmp\nchmod 0755 /b.tmp\nmv -f /b.tmp /b\n";
        assert_eq!(script_programs(s), ["chmod", "cp", "mv"]);
    }

    #[test]
    fn pipes_semicolons_and_nested_scripts_are_followed() {
        let s = "a | /usr/bin/b; c && d 'x y' || sh -c 'e; f | g' > /dev/null";
        assert_eq!(
            script_programs(s),
            ["a", "b", "c", "d", "e", "f", "g", "sh"]
        );
    }

    #[test]
    fn comments_do_not_count_as_exec_sites() {
        assert!(!code_contains("// Command::new(\"x\")", "Command::new("));
        assert!(code_contains(
            "let c = Command::new(p); // x",
            "Command::new("
        ));
    }
}
