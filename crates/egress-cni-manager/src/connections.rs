//! The plugin connections the socket server holds open, capped. A connection is *reading*
//! from accept until its request line has arrived and *handling* afterwards. When the cap is
//! reached, a new connection takes the slot of the oldest one still reading (a real plugin
//! writes its request right after connecting, so the oldest silent connection is stuck or part
//! of a flood; were it merely slow, it is answered `busy` and its plugin retries); only when
//! every slot is handling a request is the new one answered `busy`. The newest connection
//! winning is what keeps a flood of silent connections from locking real requests out: a
//! grace period for silent connections would let a fast enough flood take every freed slot
//! first. The cap itself is derived from the process's open-file limit, so plugin connections
//! never take the descriptors the Kubernetes client and the rest of the manager need.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

/// Descriptors kept free for everything but plugin connections (watches, API calls, the
/// health listener and its connections, conflist reads, the runtime's own).
pub const RESERVED_FDS: u64 = 16;

#[derive(Debug)]
struct Open {
    reading: bool,
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    // Ordered by accept order, so the first idle entry is the oldest.
    open: BTreeMap<u64, Open>,
}

/// The open plugin connections and their cap.
#[derive(Debug, Clone)]
pub struct Connections {
    table: Arc<Mutex<Table>>,
    limit: usize,
    gauge: Gauge,
}

/// What [`Connections::admit`] decided for a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; `displaced` says whether an idle connection was evicted for it.
    Admitted {
        /// The slot, freed when dropped.
        slot: Slot,
        /// An idle connection was told to go.
        displaced: bool,
    },
    /// Every slot is handling a request: answer busy.
    Full,
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    evict: CancellationToken,
    owner: Connections,
}

impl Connections {
    /// At most `limit` (at least 1) connections, counted in `gauge`.
    pub fn new(limit: usize, gauge: Gauge) -> Self {
        Self {
            table: Arc::default(),
            limit: limit.max(1),
            gauge,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cap.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Admits a new connection, evicting the oldest one still reading if the cap is reached.
    pub fn admit(&self) -> Admission {
        let mut t = self.lock();
        let displaced = t.open.len() >= self.limit;
        if displaced && !Self::evict_oldest_idle(&mut t) {
            return Admission::Full;
        }
        let id = t.next;
        t.next += 1;
        let evict = CancellationToken::new();
        t.open.insert(
            id,
            Open {
                reading: true,
                evict: evict.clone(),
            },
        );
        self.gauge.set(t.open.len() as i64);
        Admission::Admitted {
            slot: Slot {
                id,
                evict,
                owner: self.clone(),
            },
            displaced,
        }
    }

    /// Tells the oldest idle connection to go (its descriptor is closed as soon as its task
    /// sees it); used when accept runs out of descriptors. Returns whether one was found.
    pub fn evict_idle(&self) -> bool {
        let mut t = self.lock();
        let found = Self::evict_oldest_idle(&mut t);
        self.gauge.set(t.open.len() as i64);
        found
    }

    fn evict_oldest_idle(t: &mut Table) -> bool {
        let victim = t.open.iter().find(|(_, o)| o.reading).map(|(id, _)| *id);
        match victim.and_then(|id| t.open.remove(&id)) {
            Some(o) => {
                o.evict.cancel();
                true
            }
            None => false,
        }
    }

    fn release(&self, id: u64) {
        let mut t = self.lock();
        t.open.remove(&id);
        self.gauge.set(t.open.len() as i64);
    }

    fn set_handling(&self, id: u64) {
        if let Some(o) = self.lock().open.get_mut(&id) {
            o.reading = false;
        }
    }
}

impl Slot {
    /// The request has arrived: from now on this connection is never evicted.
    pub fn handling(&self) {
        self.owner.set_handling(self.id);
    }

    /// Resolves when this connection was evicted for a newer one.
    pub async fn evicted(&self) {
        self.evict.cancelled().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner.release(self.id);
    }
}

/// The cap actually used: the configured one, lowered so that plugin connections (each of
/// which may also need a connection to the API server) fit in the open-file limit next to
/// what is already open and [`RESERVED_FDS`].
pub fn effective_limit(configured: usize, soft_nofile: Option<u64>, open_now: usize) -> usize {
    let configured = configured.max(1);
    let Some(soft) = soft_nofile else {
        return configured;
    };
    let spare = soft.saturating_sub(open_now as u64 + RESERVED_FDS) / 2;
    configured
        .min(usize::try_from(spare).unwrap_or(usize::MAX))
        .max(1)
}

/// The soft open-file limit of this process and how many descriptors are open now.
pub fn fd_budget() -> (Option<u64>, usize) {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _hard)| soft);
    // The listing holds one descriptor itself.
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(1))
        .unwrap_or(0);
    (soft, open)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn admitted(a: Admission) -> (Slot, bool) {
        match a {
            Admission::Admitted { slot, displaced } => (slot, displaced),
            Admission::Full => panic!("expected admission"),
        }
    }

    #[test]
    fn the_cap_displaces_the_oldest_silent_connection_never_a_handling_one() {
        let gauge = Gauge::default();
        let c = Connections::new(3, gauge.clone());
        let (handling, _) = admitted(c.admit());
        handling.handling();
        let (old, _) = admitted(c.admit());
        let (young, _) = admitted(c.admit());
        assert_eq!(gauge.get(), 3);
        let (newest, displaced) = admitted(c.admit());
        assert!(displaced);
        assert!(
            old.evict.is_cancelled(),
            "the oldest silent connection was told to go"
        );
        assert!(!young.evict.is_cancelled() && !handling.evict.is_cancelled());
        assert_eq!(c.open(), 3);
        drop(old);
        assert_eq!(c.open(), 3, "an evicted slot is already free");
        young.handling();
        newest.handling();
        assert!(
            matches!(c.admit(), Admission::Full),
            "every slot is handling"
        );
        drop(newest);
        assert_eq!((c.open(), gauge.get()), (2, 2));
        drop((young, handling));
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn out_of_descriptors_evicts_only_silent_connections() {
        let c = Connections::new(8, Gauge::default());
        let (a, _) = admitted(c.admit());
        a.handling();
        assert!(!c.evict_idle());
        let (b, _) = admitted(c.admit());
        assert!(c.evict_idle());
        assert!(b.evict.is_cancelled());
        assert_eq!(c.open(), 1);
    }

    #[test]
    fn the_limit_fits_the_open_file_limit() {
        // 64 files, 15 open: (64 - 15 - 16) / 2 = 16 connections.
        assert_eq!(effective_limit(64, Some(64), 15), 16);
        assert_eq!(effective_limit(8, Some(64), 15), 8);
        assert_eq!(effective_limit(64, Some(1 << 20), 15), 64);
        assert_eq!(effective_limit(64, Some(20), 15), 1);
        assert_eq!(effective_limit(0, None, 15), 1);
    }
}
