//! The independent conformance suite: the official Azure SDK for Python (pinned in
//! hack/requirements-dev.txt, installed by `make deps` into .tools/venv) drives the emulator
//! binary over https through every flow the operator performs (`sdk-conformance/*.py`, pytest).
//! Without the venv the test fails when CI=true and says how to get it; elsewhere it skips
//! with that message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;
use process::{BIN, Stop, wait_for_file};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The venv's python with the pinned SDKs, or `None` (with the reason) when it is missing.
fn python() -> Result<PathBuf, String> {
    let py = workspace().join(".tools/venv/bin/python");
    if !py.exists() {
        return Err(format!("{} is missing: run `make deps`", py.display()));
    }
    let probe = Command::new(&py)
        .args([
            "-c",
            "import azure.mgmt.network, azure.mgmt.compute, azure.mgmt.resource.resources, pytest",
        ])
        .output()
        .map_err(|e| format!("failed to run {}: {e}", py.display()))?;
    if !probe.status.success() {
        return Err(format!(
            "the venv lacks the pinned SDKs ({}): run `make deps`",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    Ok(py)
}

#[test]
fn official_azure_sdk_for_python_drives_the_emulator() {
    let py = match python() {
        Ok(p) => p,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("SDK conformance suite cannot run under CI: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED sdk conformance suite: {why}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("emu-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url_file = dir.join("arm-url");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/vmpool.yaml");
    let log = std::fs::File::create(dir.join("emulator.log")).unwrap();
    let child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--tls",
            "--require-auth",
            "--lro-polls",
            "1",
            "--page-size",
            "2",
        ])
        .arg("--seed")
        .arg(&seed)
        .arg("--url-file")
        .arg(&url_file)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut emulator = Stop(child);
    let url = wait_for_file(&mut emulator, &url_file);
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-conformance");
    let out = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA"])
        .arg(&suite)
        .current_dir(&suite)
        .env("EMULATOR_URL", &url)
        .env("EMULATOR_CA", dir.join("arm-url.ca.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    drop(emulator);
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("emulator.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "the SDK suite failed (pytest exit {:?}); emulator log tail:\n{}",
            out.status.code(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert!(stdout.contains(" passed"), "{stdout}");
    assert!(
        !stdout.contains(" skipped"),
        "nothing may be skipped: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
