//! Time as the engine sees it: unix seconds, from the system or from a test's hand.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The store's time for what judges it outside the store (the log's writer and a
/// replication log marking a delayed flush's deadline): the clock plus the steps back the
/// store has seen ([`crate::Store::now`]), shared with the store. A deadline recorded
/// before a step is still judged when the store acts on it, not the step's seconds later.
#[derive(Debug, Clone, Default)]
pub struct StoreTime {
    clock: Clock,
    skew: Arc<AtomicU32>,
}

impl StoreTime {
    /// `clock` alone, for a log no store's steps move (tests).
    pub fn new(clock: Clock) -> StoreTime {
        StoreTime {
            clock,
            skew: Arc::default(),
        }
    }

    pub(crate) fn with_skew(clock: Clock, skew: Arc<AtomicU32>) -> StoreTime {
        StoreTime { clock, skew }
    }

    /// The store's time now (within the second a thread's coarse clock read may lag).
    pub fn now(&self) -> u32 {
        // the step before the clock, as the store reads them
        let skew = self.skew.load(Ordering::Acquire);
        self.clock.now().saturating_add(skew)
    }

    /// Seconds the store's time is ahead of the clock (the steps back it has seen).
    pub(crate) fn skew(&self) -> u32 {
        self.skew.load(Ordering::Relaxed)
    }

    /// The clock's unix second (a log's or stream's record) as the store's time; 0 = none.
    pub fn of_clock(&self, t: u32) -> u32 {
        if t == 0 {
            0
        } else {
            t.saturating_add(self.skew.load(Ordering::Relaxed))
        }
    }

    /// The store's time as the clock's unix second, as records carry it; 0 = none.
    pub fn to_clock(&self, t: u32) -> u32 {
        if t == 0 {
            0
        } else {
            t.saturating_sub(self.skew.load(Ordering::Relaxed)).max(1)
        }
    }
}

/// memcached's boundary: an exptime up to this many seconds is relative, above it absolute.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// The store's clock. `Clock::manual` lets tests move time by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicU32>),
}

impl Clock {
    /// A clock that stays at `start` until [`Clock::advance`] or [`Clock::set`].
    pub fn manual(start: u32) -> Clock {
        Clock::Manual(Arc::new(AtomicU32::new(start)))
    }

    /// Unix seconds now.
    #[inline]
    pub fn now(&self) -> u32 {
        match self {
            Clock::System => system_now(),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, secs: u32) {
        if let Clock::Manual(t) = self {
            t.fetch_add(secs, Ordering::Relaxed);
        }
    }

    /// Sets a manual clock; no effect on the system clock.
    pub fn set(&self, secs: u32) {
        if let Clock::Manual(t) = self {
            t.store(secs, Ordering::Relaxed);
        }
    }

    /// memcached's exptime rule at time `now`: `Some(0)` never expires, `Some(t)` expires at
    /// unix second `t`, `None` is already expired (negative, or absolute in the past).
    pub fn resolve_exptime(exptime: i64, now: u32) -> Option<u32> {
        if exptime == 0 {
            Some(0)
        } else if exptime < 0 {
            None
        } else if exptime <= REALTIME_MAXDELTA {
            Some(now.saturating_add(exptime as u32))
        } else if exptime <= now as i64 {
            None
        } else {
            Some(exptime.min(u32::MAX as i64) as u32)
        }
    }
}

/// Every operation reads the clock, so it must be cheap. On Linux the coarse clock is the
/// time of the last kernel tick (a few ms old), read from the vDSO without reading the TSC:
/// a fraction of `SystemTime::now()`'s cost and exact enough for whole seconds (memcached's
/// own clock advances once a second, from a timer).
#[cfg(target_os = "linux")]
#[inline]
fn system_now() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        ts.tv_sec as u32
    } else {
        precise_now()
    }
}

#[cfg(not(target_os = "linux"))]
#[inline]
fn system_now() -> u32 {
    precise_now()
}

fn precise_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_follows_memcached() {
        let now = 1_700_000_000;
        assert_eq!(Clock::resolve_exptime(0, now), Some(0));
        assert_eq!(Clock::resolve_exptime(-1, now), None);
        assert_eq!(Clock::resolve_exptime(10, now), Some(now + 10));
        assert_eq!(
            Clock::resolve_exptime(REALTIME_MAXDELTA, now),
            Some(now + REALTIME_MAXDELTA as u32)
        );
        assert_eq!(Clock::resolve_exptime(REALTIME_MAXDELTA + 1, now), None);
        assert_eq!(Clock::resolve_exptime(now as i64 + 5, now), Some(now + 5));
    }

    #[test]
    fn the_system_clock_is_unix_seconds() {
        // the coarse clock lags by at most a tick: equal, or a second behind at a boundary
        let before = precise_now();
        let now = Clock::System.now();
        let after = precise_now();
        assert!(
            before.saturating_sub(1) <= now && now <= after,
            "{before} {now} {after}"
        );
    }

    #[test]
    fn manual_clock_moves_by_hand() {
        let c = Clock::manual(100);
        c.advance(5);
        assert_eq!(c.now(), 105);
        c.set(7);
        assert_eq!(c.now(), 7);
    }
}
