//! Running the emulator binary in tests: the path of the built binary, a guard that kills the
//! child on drop, and a bounded wait for the file the binary writes its URL to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_egress-azure-emulator");

/// Kills and reaps the child when dropped.
pub struct Stop(pub Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 30 s) for `file` to appear while the child keeps running; returns its text.
pub fn wait_for_file(child: &mut Stop, file: &Path) -> String {
    let started = Instant::now();
    while !file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {}",
            file.display()
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the emulator exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(file).unwrap().trim().to_owned()
}
