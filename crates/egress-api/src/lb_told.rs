//! What the load balancer's own prober was last told: the contract between a gateway node's
//! probe server (`egress-gateway-daemon lb-probe`) and the CNI managers that probe it too.
//!
//! A gateway node answers the load balancer's probe (`GET /gw/<SGC UID>`) with 503 when it
//! is being drained; the load balancer moves the flows only once *its* prober got that 503
//! (probe threshold 1), which can be up to a probe interval (5 s on Azure) after a CNI
//! manager's own probe saw it. A manager that re-handshook its pods at its own 503 would
//! handshake with the draining node again, the load balancer still pointing there, and the
//! pods' flows would stall once it moves them (docs/design.md, "Restart or drain"). So the
//! probe server remembers what it answered the load balancer's prober (recognised by its
//! source address, Azure's documented 168.63.129.16) and tells every other asker:
//!
//! * response header [`LB_STATUS_HEADER`]: the status the load balancer's prober got last for
//!   this path (`200`, `503`; absent while it has not probed since the server started), and
//!   [`LB_SINCE_HEADER`]: for how many milliseconds it has been getting that status;
//! * request header [`LB_WAIT_HEADER`] (milliseconds, at most [`MAX_WAIT`]): hold a 200 until
//!   the answer changes, and a 503 while the load balancer was last told 200 until its
//!   prober is told something, or until the wait is over. A manager asking again as soon as
//!   it is answered learns of a drain at once and of the load balancer's 503 within
//!   milliseconds, at one request per wait, and still sees a dead node at its timeout.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Source address of Azure's health probes (documented; the simulator's prober uses it too).
pub const AZURE_PROBE_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16));
/// Response header: the status the load balancer's prober got last for this path.
pub const LB_STATUS_HEADER: &str = "x-egress-lb-status";
/// Response header: milliseconds since the load balancer's prober started getting it.
pub const LB_SINCE_HEADER: &str = "x-egress-lb-since-ms";
/// Request header: how long (milliseconds) a 503 may wait for the load balancer's prober.
pub const LB_WAIT_HEADER: &str = "x-egress-lb-wait-ms";
/// The longest wait a request may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// What the load balancer was told, as a manager reads it from a probe answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbTold {
    /// The status its prober got last (200, 503, ...).
    pub status: u16,
    /// For how long it has been getting that status.
    pub since: Duration,
}

impl LbTold {
    /// Reads the two response headers (`None` when absent or malformed: the server does not
    /// know, or does not say).
    pub fn from_headers(status: Option<&str>, since_ms: Option<&str>) -> Option<Self> {
        let status = status?.trim().parse().ok()?;
        let since = Duration::from_millis(since_ms?.trim().parse().ok()?);
        Some(Self { status, since })
    }
}

/// The wait a request asked for (`None`: none, or malformed), at most [`MAX_WAIT`].
pub fn parse_wait(value: Option<&str>) -> Option<Duration> {
    let ms: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_millis(ms).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn headers_parse_and_bad_ones_mean_unknown() {
        assert_eq!(
            LbTold::from_headers(Some("503"), Some("12")),
            Some(LbTold {
                status: 503,
                since: Duration::from_millis(12)
            })
        );
        assert_eq!(LbTold::from_headers(Some("503"), None), None);
        assert_eq!(LbTold::from_headers(Some("x"), Some("1")), None);
        assert_eq!(LbTold::from_headers(None, Some("1")), None);
        assert_eq!(parse_wait(Some("500")), Some(Duration::from_millis(500)));
        assert_eq!(parse_wait(Some("999999")), Some(MAX_WAIT));
        assert_eq!(parse_wait(Some("-1")), None);
        assert_eq!(parse_wait(None), None);
    }
}
