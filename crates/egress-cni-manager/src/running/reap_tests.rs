//! Tests of the wireguard-go reaper (`reap_children`).
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn stat_lines_give_command_state_and_parent() {
    assert_eq!(
        parse_stat("4242 (wireguard-go) Z 17 4242 4242 0 -1 4194564 0"),
        Some(("wireguard-go", 'Z', 17))
    );
    // A command name with spaces and parentheses ends at the last ") ".
    assert_eq!(
        parse_stat("7 (a) b (c)) S 1 7 7 0"),
        Some(("a) b (c)", 'S', 1))
    );
    assert_eq!(parse_stat("garbage"), None);
    assert_eq!(parse_stat("1 (x) Z notanumber"), None);
}

#[test]
// The zombie is the point; it is collected by `waitpid` below.
#[allow(clippy::zombie_processes)]
fn only_our_wireguard_go_zombies_are_listed() {
    // This test process has no such children: nothing to collect, and the scan
    // tolerates processes vanishing under it.
    assert!(wireguard_zombies(std::process::id()).is_empty());
    // A real zombie child named wireguard-go is found (a copy of `true` under that name).
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("wireguard-go");
    std::fs::copy("/bin/true", &fake).unwrap();
    let child = std::process::Command::new(&fake).spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wireguard_zombies(std::process::id()).contains(&pid) {
        assert!(Instant::now() < deadline, "zombie {pid} never listed");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert!(!wireguard_zombies(std::process::id()).contains(&pid));
}
