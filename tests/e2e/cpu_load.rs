//! How busy the machine's CPUs were over a window of a benchmark, so a figure missed under
//! load can be read against the load itself: the share of the cores' time spent running
//! anything (`/proc/stat`), and the share of the window during which at least one runnable
//! task waited for a CPU (the kernel's pressure stall information, `/proc/pressure/cpu`).
//! The whole simulated cluster shares this machine's cores, so a saturated window says the
//! components competed with each other and with the measurement for them.

use std::time::Instant;

/// One reading of the machine's CPU counters.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    at: Instant,
    /// Jiffies the CPUs spent running anything (all but idle and iowait), summed over CPUs.
    busy: u64,
    /// All jiffies, summed over CPUs.
    total: u64,
    /// Microseconds during which some runnable task waited for a CPU (PSI "some"), if the
    /// kernel reports pressure.
    waited_us: Option<u64>,
}

/// Reads the counters now (`None` where `/proc/stat` cannot be read or parsed).
pub fn sample() -> Option<CpuSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    let waited_us = std::fs::read_to_string("/proc/pressure/cpu")
        .ok()
        .and_then(|p| psi_some_total(&p));
    Some(CpuSample {
        at,
        busy: total.saturating_sub(idle),
        total,
        waited_us,
    })
}

/// The `total=` of the `some` line of a PSI file.
fn psi_some_total(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// "cores busy 97%, a task waiting for a CPU 88% of the time" between two samples.
pub fn describe(from: &CpuSample, to: &CpuSample) -> String {
    let busy = percent(
        to.busy.saturating_sub(from.busy),
        to.total.saturating_sub(from.total),
    );
    let window_us = to.at.saturating_duration_since(from.at).as_micros();
    let waited = match (from.waited_us, to.waited_us) {
        (Some(a), Some(b)) => format!(
            "a task waiting for a CPU {}% of the time",
            percent(
                b.saturating_sub(a),
                u64::try_from(window_us).unwrap_or(u64::MAX)
            )
        ),
        _ => "no CPU pressure information".to_owned(),
    };
    format!(
        "over {:.2} s: cores busy {busy}%, {waited}",
        to.at.saturating_duration_since(from.at).as_secs_f64()
    )
}

/// CPU time the processes of these network namespaces (a simulated node: its daemons and,
/// on a gateway node, its WireGuard) ran and waited for a CPU, in nanoseconds, summed over
/// their threads (`/proc/PID/task/TID/schedstat`).
pub fn schedstat_of(netns: &[String]) -> (u64, u64) {
    let inodes: Vec<u64> = netns
        .iter()
        .filter_map(|n| egress_sim::netns::inode(n))
        .collect();
    let mut sum = (0u64, 0u64);
    for pid in egress_sim::netns::pids_in(&inodes) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut f = text
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap_or(0));
            sum.0 += f.next().unwrap_or(0);
            sum.1 += f.next().unwrap_or(0);
        }
    }
    sum
}

fn percent(part: u64, whole: u64) -> u64 {
    part.saturating_mul(100)
        .checked_div(whole)
        .map_or(0, |p| p.min(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_some_total_is_read_from_the_some_line() {
        let text = "some avg10=6.51 avg60=2.90 avg300=0.75 total=3636866\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(psi_some_total(text), Some(3_636_866));
        assert_eq!(psi_some_total("full total=1\n"), None);
    }

    #[test]
    fn describe_gives_shares_of_the_window() {
        let from = CpuSample {
            at: Instant::now(),
            busy: 100,
            total: 1_000,
            waited_us: Some(0),
        };
        let to = CpuSample {
            at: from.at + std::time::Duration::from_secs(2),
            busy: 400,
            total: 1_400,
            waited_us: Some(1_500_000),
        };
        assert_eq!(
            describe(&from, &to),
            "over 2.00 s: cores busy 75%, a task waiting for a CPU 75% of the time"
        );
    }

    #[test]
    fn this_machine_can_be_sampled() {
        let s = sample().expect("/proc/stat is readable");
        assert!(s.total >= s.busy && s.total > 0, "{s:?}");
    }
}
