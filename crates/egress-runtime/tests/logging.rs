//! Log lines carry ANSI colour codes only on a terminal: this test runs itself as a child that
//! logs through `init_tracing`, once with its output on a pipe (as in a container or under a
//! supervisor), once on a pseudo-terminal (`script` from util-linux), for both writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use egress_runtime::{LogFormat, LogWriter, init_tracing};

const CHILD: &str = "EGRESS_RUNTIME_LOG_CHILD";
const TEST: &str = "log_lines_are_coloured_only_on_a_terminal";
const ESC: char = '\u{1b}';

fn child_command(writer: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, writer)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info");
    c
}

#[test]
fn log_lines_are_coloured_only_on_a_terminal() {
    if let Ok(writer) = std::env::var(CHILD) {
        let writer = if writer == "stderr" {
            LogWriter::Stderr
        } else {
            LogWriter::Stdout
        };
        init_tracing(LogFormat::Text, writer);
        tracing::info!(answer = 42, "hello from the child");
        return;
    }
    for writer in ["stdout", "stderr"] {
        let out = child_command(writer).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(if writer == "stdout" {
            &out.stdout
        } else {
            &out.stderr
        })
        .into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("hello from the child"))
            .unwrap_or_else(|| panic!("no log line on {writer}: {text:?}"));
        assert!(
            !line.contains(ESC),
            "colour codes on a pipe ({writer}): {line:?}"
        );
        assert!(line.contains("answer=42"), "{line:?}");
    }
    // On a terminal the same line is coloured.
    let cmd = child_command("stdout");
    let line = format!(
        "{} {TEST} --exact --nocapture --test-threads=1",
        cmd.get_program().to_string_lossy()
    );
    let tty = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env(CHILD, "stdout")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&tty.stdout);
    let logged = text
        .lines()
        .find(|l| l.contains("hello from the child"))
        .unwrap_or_else(|| panic!("no log line on the terminal: {text:?}"));
    assert!(logged.contains(ESC), "no colour on a terminal: {logged:?}");
}
