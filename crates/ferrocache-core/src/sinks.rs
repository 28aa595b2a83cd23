//! Weakly held listeners the store calls from inside (the eviction and system-event
//! hooks): registering one costs its owner nothing to forget, and while none is
//! registered the caller's check is one relaxed atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, Weak};

/// The registered sinks of one kind; a sink that went away is dropped at the next
/// registration.
pub(crate) struct Sinks<S: ?Sized> {
    any: AtomicBool,
    list: RwLock<Vec<Weak<S>>>,
}

impl<S: ?Sized> Default for Sinks<S> {
    fn default() -> Self {
        Sinks {
            any: AtomicBool::new(false),
            list: RwLock::new(Vec::new()),
        }
    }
}

impl<S: ?Sized> Sinks<S> {
    /// Adds `sink` unless it is registered already; false if it was.
    pub fn add(&self, sink: Weak<S>) -> bool {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|s| s.strong_count() > 0);
        let fresh = !list.iter().any(|s| Weak::ptr_eq(s, &sink));
        if fresh {
            list.push(sink);
        }
        self.any.store(!list.is_empty(), Ordering::Relaxed);
        fresh
    }

    /// Whether some sink is registered (one relaxed load).
    #[inline]
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Whether some live sink satisfies `wants`.
    pub fn any_wants(&self, wants: impl Fn(&S) -> bool) -> bool {
        if !self.any() {
            return false;
        }
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        list.iter().any(|s| s.upgrade().is_some_and(|s| wants(&s)))
    }

    /// Calls `f` with each live sink for which `wants` holds.
    pub fn each_wanting(&self, wants: impl Fn(&S) -> bool, mut f: impl FnMut(&S)) {
        if !self.any() {
            return;
        }
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        for s in list.iter() {
            if let Some(s) = s.upgrade() {
                if wants(&s) {
                    f(&s);
                }
            }
        }
    }
}
