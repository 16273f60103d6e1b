//! `egress-gateway-daemon lb-probe`: the load balancer's health probe, answered from the
//! daemon's probe state file by a small process that does not restart with the daemon (its
//! own container in the daemon's pod, its own process in the simulator). The health the load
//! balancer sees is that of the data path, which lives in the kernel and outlives the
//! daemon; so a daemon restart, crash or OOM kill does not move a single flow, while a drain
//! the daemon writes (the node going away) or a daemon gone for longer than `stale_after`
//! (its state may no longer be maintained) answers 503.
//!
//! The file is checked every [`REFRESH`] (one `stat`; read when it changed), so answers never
//! wait on the file system.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use tokio::net::TcpListener;

use crate::http::Answer;
use crate::probe::answer;
use crate::probe_file::{self, ProbeFile};

/// How often the state file is checked for changes.
pub const REFRESH: Duration = Duration::from_millis(50);

/// Settings of the keeper.
#[derive(Debug, Clone)]
pub struct KeeperConfig {
    /// The daemon's probe state file.
    pub state_file: PathBuf,
    /// How old the daemon's heartbeat may be before every probe answers 503.
    pub stale_after: Duration,
}

#[derive(Debug, Default)]
struct Cached {
    modified: Option<SystemTime>,
    file: Option<ProbeFile>,
}

/// The keeper's answer to `path` from `file` at `now`.
pub fn keeper_answer(
    path: &str,
    file: Option<&ProbeFile>,
    now: SystemTime,
    stale_after: Duration,
) -> Answer {
    match file {
        Some(f) if f.fresh(now, stale_after) => f.state.answer(path),
        other => {
            let (status, ct, body) = answer(path, |_| false);
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return (status, ct, body);
            }
            let why = match other {
                Some(_) => "the gateway daemon has not reported for too long\n",
                None => "no state from the gateway daemon yet\n",
            };
            (status, ct, why.into())
        }
    }
}

fn refresh(config: &KeeperConfig, cache: &RwLock<Cached>) {
    let modified = std::fs::metadata(&config.state_file)
        .and_then(|m| m.modified())
        .ok();
    let known = cache.read().unwrap_or_else(|p| p.into_inner()).modified;
    if modified == known {
        return;
    }
    let file = match modified.map(|_| probe_file::read(&config.state_file)) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            tracing::warn!("{}", egress_runtime::error_chain(&e));
            None
        }
        None => None,
    };
    *cache.write().unwrap_or_else(|p| p.into_inner()) = Cached { modified, file };
}

/// Serves the probe on `listener` from the state file until `shutdown` completes.
pub async fn serve_keeper(
    listener: TcpListener,
    config: KeeperConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let cache = Arc::new(RwLock::new(Cached::default()));
    refresh(&config, &cache);
    let refresher = {
        let (config, cache) = (config.clone(), cache.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH);
            loop {
                ticks.tick().await;
                refresh(&config, &cache);
            }
        })
    };
    let stale_after = config.stale_after;
    crate::http::serve(
        listener,
        move |path| {
            let c = cache.read().unwrap_or_else(|p| p.into_inner());
            keeper_answer(path, c.file.as_ref(), SystemTime::now(), stale_after)
        },
        shutdown,
    )
    .await;
    refresher.abort();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::probe::ProbeSnapshot;

    #[test]
    fn answers_follow_the_file_while_it_is_fresh() {
        let now = SystemTime::now();
        let file = ProbeFile {
            state: ProbeSnapshot {
                programmed: ["u1".to_owned()].into(),
                draining: None,
            },
            heartbeat_unix_ms: probe_file::unix_ms(now) - 5_000,
            pid: 1,
        };
        let minute = Duration::from_secs(60);
        assert_eq!(
            keeper_answer("/gw/u1", Some(&file), now, minute).0,
            StatusCode::OK
        );
        assert_eq!(
            keeper_answer("/gw/u2", Some(&file), now, minute).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let stale = keeper_answer("/gw/u1", Some(&file), now, Duration::from_secs(1));
        assert_eq!(stale.0, StatusCode::SERVICE_UNAVAILABLE);
        assert!(stale.2.contains("not reported"), "{}", stale.2);
        let none = keeper_answer("/gw/u1", None, now, minute);
        assert_eq!(none.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            keeper_answer("/x", None, now, minute).0,
            StatusCode::BAD_REQUEST
        );
        let draining = ProbeFile {
            state: ProbeSnapshot {
                draining: Some("cordoned".into()),
                ..file.state.clone()
            },
            ..file
        };
        assert_eq!(
            keeper_answer("/gw/u1", Some(&draining), now, minute).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
