//! The runner against the real UML kernel (the cached build of `make uml-kernel`; `make test`
//! builds it before the tests). Without a cached kernel the tests print SKIPPED, and fail
//! under `CI=true`. The guests run one at a time (a lock), so the checks for left-over
//! processes and directories see only their own run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use egress_uml::{GuestCommand, Machine, UmlError};

static ONE_GUEST: Mutex<()> = Mutex::new(());

const RUNNER: &str = env!("CARGO_BIN_EXE_egress-uml");

fn kernel() -> Option<PathBuf> {
    match egress_uml::kernel::cached().unwrap() {
        Some(k) => Some(k),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and no UML kernel is cached: `make test` builds it first (make uml-kernel)"
            );
            eprintln!("SKIPPED: no UML kernel cached yet (make uml-kernel)");
            None
        }
    }
}

/// `egress-uml run` with `args`; (exit code, stdout, stderr).
fn cli(kernel: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(RUNNER)
        .arg("run")
        .arg("--kernel")
        .arg(kernel)
        .args(["--mem", "256"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_runs_with_its_environment_and_its_exit_code_and_output_come_back() {
    let Some(kernel) = kernel() else { return };
    let _one = ONE_GUEST.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let (code, out, err) = cli(
        &kernel,
        &[
            "--env",
            "GREETING=hello from the guest",
            "--",
            "sh",
            "-c",
            "echo \"$GREETING\"; echo line two; echo to stderr >&2; exit 7",
        ],
    );
    assert_eq!(code, 7, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("hello from the guest\nline two\nto stderr\n"),
        "{out:?}"
    );
    assert!(!out.contains('\r'), "CRLF left in {out:?}");
    eprintln!("boot, run, power-off: {:?}", started.elapsed());
}

#[test]
fn the_kernel_has_wireguard_and_the_guest_changes_nothing_on_the_host() {
    let Some(kernel) = kernel() else { return };
    let _one = ONE_GUEST.lock().unwrap_or_else(|p| p.into_inner());
    let mark = format!("egress-uml-test-{}", std::process::id());
    let script = "set -e
        touch /tmp/$MARK /run/$MARK /var/tmp/$MARK
        if touch /var/lib/$MARK 2>/dev/null; then echo host root is writable; exit 1; fi
        ip netns add $MARK
        ip -n $MARK link add wg0 type wireguard
        ip -n $MARK link add v0 type veth peer name v1
        ip netns exec $MARK nft add table ip t
        ip netns exec $MARK nft add chain ip t p '{ type nat hook postrouting priority srcnat; }'
        ip netns exec $MARK nft add rule ip t p masquerade
        echo data path ok";
    let (code, out, err) = cli(
        &kernel,
        &["--env", &format!("MARK={mark}"), "--", "sh", "-c", script],
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("data path ok"), "{out}");
    for path in [
        format!("/tmp/{mark}"),
        format!("/run/{mark}"),
        format!("/var/tmp/{mark}"),
        format!("/var/lib/{mark}"),
        format!("/run/netns/{mark}"),
    ] {
        assert!(!Path::new(&path).exists(), "{path} appeared on the host");
    }
}

#[test]
fn a_guest_that_hangs_is_killed_at_the_timeout_and_leaves_nothing_behind() {
    let Some(kernel) = kernel() else { return };
    let _one = ONE_GUEST.lock().unwrap_or_else(|p| p.into_inner());
    let machine = Machine {
        kernel,
        init: PathBuf::from(RUNNER),
        mem_mib: 256,
        timeout: Duration::from_secs(4),
    };
    let started = Instant::now();
    let err = egress_uml::run(
        &machine,
        &GuestCommand {
            argv: vec!["sleep".into(), "600".into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            ..GuestCommand::default()
        },
    )
    .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, UmlError::Timeout(_)), "{err}");
    assert!(took < Duration::from_secs(10), "killing took {took:?}");
    // Run directories carry the runner's PID; processes of the guest carry it on their
    // command line (uml_dir=...).
    let tag = format!("egress-uml-{}-", std::process::id());
    let left: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&tag))
        .collect();
    assert!(left.is_empty(), "run directories left: {left:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = processes_mentioning(&tag);
        if procs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "UML processes left: {procs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_missing_command_or_kernel_is_a_clear_error() {
    let machine = Machine {
        kernel: PathBuf::from("/nonexistent/linux"),
        init: PathBuf::from(RUNNER),
        mem_mib: 256,
        timeout: Duration::from_secs(4),
    };
    let cmd = GuestCommand {
        argv: vec!["true".into()],
        ..GuestCommand::default()
    };
    let err = egress_uml::run(&machine, &cmd).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the UML kernel /nonexistent/linux does not exist or is not executable (run `make uml-kernel`)"
    );
    let err = egress_uml::run(&machine, &GuestCommand::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "guest init failed to run the command: no command given"
    );
}

/// PIDs and command lines of processes whose command line contains `needle` (zombies and
/// processes that vanish while read are skipped).
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(needle)
                .then(|| format!("{} {text}", e.file_name().to_string_lossy()))
        })
        .collect()
}
