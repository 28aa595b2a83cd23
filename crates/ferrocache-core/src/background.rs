//! The background threads all stores of a process share (memcached has one crawler, one LRU
//! maintainer and one rebalancer per process; a Node process may hold a thousand stores).
//!
//! A store built with `Config::background` registers here ([`Registration`]). At most
//! [`WORKERS`] threads run the stores' background passes: the first is spawned with the first
//! store, another only when a step is due while every thread is busy with one; a thread
//! that ran no step for [`LINGER`] ends, unless it is the last while stores remain. They run
//! the passes in steps ([`Core::background_step`]): a step is one lock hold of a walk or one bounded piece
//! of the rest of a pass, and says when the store's next step is due (`lru_crawler sleep`
//! later inside a walk, [`crate::crawler::INTERVAL`] after a pass ends). The step due first
//! runs first, so stores take turns: a store whose walk takes minutes delays another's step
//! by about one step per store ready before it, never by its whole walk.
//!
//! The registry holds each store weakly and never runs two steps of one store at once. A
//! store being dropped unregisters and waits for a step of it that is running to end, so no
//! step starts on a store being freed and its memory goes back before the drop returns.

use crate::shard::Core;
use parking_lot::{Condvar, Mutex};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Threads the background work of all stores shares at most.
pub const WORKERS: usize = 2;

/// How long a thread waits with no step to run before it ends (the last one: with no
/// store registered).
const LINGER: Duration = Duration::from_secs(2);

/// A registered store.
struct Entry {
    core: Weak<Core>,
    /// When its next step is due; the queue's entries that disagree are stale.
    due: Instant,
    /// Woken while a step of it ran: the next step is due at once.
    woken: bool,
}

struct Sched {
    stores: BTreeMap<u64, Entry>,
    /// (due, store id), earliest first; stale entries are skipped when they come up.
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Stores a step runs for now, and on which thread.
    running: Vec<(u64, ThreadId)>,
    workers: usize,
}

static SCHED: Mutex<Sched> = Mutex::new(Sched {
    stores: BTreeMap::new(),
    queue: BinaryHeap::new(),
    running: Vec::new(),
    workers: 0,
});
/// Signals a change of the schedule: a store registered, woken or done with a step.
static CHANGED: Condvar = Condvar::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A number for a new store, used to wake it ([`wake`]).
pub(crate) fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Has store `id`'s next step run now: before its interval or `lru_crawler sleep` ends (a
/// requested crawl, a lowered memory limit), as soon as a running step of it ends. Nothing
/// for a store that is not registered.
pub(crate) fn wake(id: u64) {
    let mut s = SCHED.lock();
    let now = Instant::now();
    let running = s.running.iter().any(|&(r, _)| r == id);
    let Some(e) = s.stores.get_mut(&id) else {
        return;
    };
    if running {
        e.woken = true;
    } else if e.due > now {
        e.due = now;
        s.queue.push(Reverse((now, id)));
        CHANGED.notify_all();
    }
}

/// A store's place in the schedule; dropping it unregisters the store.
pub(crate) struct Registration {
    id: u64,
}

impl Registration {
    /// Registers `core` (whose `bg_id` names it); its first pass is due after an interval.
    pub fn new(core: &Arc<Core>) -> Registration {
        let id = core.bg_id;
        let due = Instant::now() + crate::crawler::INTERVAL;
        let mut s = SCHED.lock();
        s.stores.insert(
            id,
            Entry {
                core: Arc::downgrade(core),
                due,
                woken: false,
            },
        );
        s.queue.push(Reverse((due, id)));
        if s.workers == 0 {
            spawn(&mut s);
        }
        CHANGED.notify_all();
        Registration { id }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut s = SCHED.lock();
        s.stores.remove(&self.id);
        // a step of this store that runs on another thread ends first (on this one, a sink
        // dropping its own store, the step's reference frees the store once the step ends)
        while s.running.iter().any(|&(r, t)| r == self.id && t != me) {
            CHANGED.wait(&mut s);
        }
    }
}

/// `(threads alive, stores registered)`.
#[cfg(test)]
pub(crate) fn load() -> (usize, usize) {
    let s = SCHED.lock();
    (s.workers, s.stores.len())
}

/// Starts a worker (none when the system refuses a thread: the stores wait for the next
/// registration or backlog to start one).
fn spawn(s: &mut Sched) {
    let spawned = std::thread::Builder::new()
        .name("ferrocache-bg".into())
        .spawn(worker);
    if spawned.is_ok() {
        s.workers += 1;
    }
}

/// The queue's first entry that is current, dropping the stale ones before it.
fn first(s: &mut Sched) -> Option<(Instant, u64)> {
    while let Some(&Reverse((due, id))) = s.queue.peek() {
        let live = match s.stores.get(&id) {
            Some(e) => e.due == due && !s.running.iter().any(|&(r, _)| r == id),
            None => false,
        };
        if live {
            return Some((due, id));
        }
        s.queue.pop();
    }
    None
}

/// What a worker does next.
enum Next {
    Run(u64, Arc<Core>),
    Wait(Option<Instant>),
}

/// The first store whose step is due, taken out of the queue; else until when to wait.
fn next(s: &mut Sched, now: Instant) -> Next {
    while let Some((due, id)) = first(s) {
        if due > now {
            return Next::Wait(Some(due));
        }
        s.queue.pop();
        match s.stores.get(&id).and_then(|e| e.core.upgrade()) {
            Some(core) => return Next::Run(id, core),
            // dropped without unregistering (cannot happen: Shards unregisters first)
            None => {
                s.stores.remove(&id);
            }
        }
    }
    Next::Wait(None)
}

fn worker() {
    let me = std::thread::current().id();
    let mut s = SCHED.lock();
    let mut worked = Instant::now();
    loop {
        let now = Instant::now();
        match next(&mut s, now) {
            Next::Run(id, core) => {
                s.running.push((id, me));
                // another step due while this one runs: a second thread, if allowed
                if s.workers < WORKERS && first(&mut s).is_some_and(|(due, _)| due <= now) {
                    spawn(&mut s);
                }
                drop(s);
                // a step that panics (a bug, a sink's panic) ends that store's background
                // work, not the thread shared with the others, nor its drop (left waiting)
                let step = std::panic::AssertUnwindSafe(|| core.background_step());
                let delay = std::panic::catch_unwind(step).ok();
                // the store's last reference may be this one (its registration waits for
                // `running` to clear, unless it was dropped on this thread)
                drop(core);
                s = SCHED.lock();
                s.running.retain(|&r| r != (id, me));
                let now = Instant::now();
                match (s.stores.get_mut(&id), delay) {
                    (Some(e), Some(delay)) => {
                        let due = match std::mem::take(&mut e.woken) {
                            true => now,
                            false => now + delay,
                        };
                        e.due = due;
                        s.queue.push(Reverse((due, id)));
                    }
                    (Some(_), None) => {
                        s.stores.remove(&id);
                    }
                    (None, _) => {}
                }
                CHANGED.notify_all();
                worked = Instant::now();
            }
            Next::Wait(until) => {
                // the last thread stays while any store is registered
                let may_end = s.stores.is_empty() || s.workers > 1;
                let end = worked + LINGER;
                if may_end && now >= end {
                    s.workers -= 1;
                    return;
                }
                match (until, may_end) {
                    (Some(due), true) => CHANGED.wait_until(&mut s, due.min(end)),
                    (Some(due), false) => CHANGED.wait_until(&mut s, due),
                    (None, true) => CHANGED.wait_until(&mut s, end),
                    (None, false) => {
                        CHANGED.wait(&mut s);
                        continue;
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Store};

    fn registered(id: u64) -> bool {
        SCHED.lock().stores.contains_key(&id)
    }

    /// Panics in its first step.
    struct Panicky;

    impl crate::sysevent::SysEventSink for Panicky {
        fn wants_sysevents(&self) -> bool {
            true
        }
        fn sysevent(&self, _: &crate::sysevent::SysEvent) {
            panic!("a sink's bug");
        }
    }

    #[test]
    fn a_step_that_panics_ends_its_stores_background_work_not_the_thread() {
        let s = Store::new(Config::default().memory_limit(1 << 20).shards(1)).unwrap();
        let sink: Arc<dyn crate::sysevent::SysEventSink> = Arc::new(Panicky);
        s.add_sysevent_sink(Arc::downgrade(&sink));
        s.store(&crate::StoreRequest::new(crate::StoreMode::Set, b"k", b"v"))
            .unwrap();
        let id = s.inner.core().bg_id;
        let end = Instant::now() + Duration::from_secs(10);
        while registered(id) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!registered(id), "the panicking store is still scheduled");
        // another store is still served, and the first one's drop does not wait
        let other = Store::new(Config::default().memory_limit(1 << 20).shards(1)).unwrap();
        let started = other.stats().lru_crawler_starts;
        let end = Instant::now() + Duration::from_secs(10);
        while other.stats().lru_crawler_starts == started && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            other.stats().lru_crawler_starts > started,
            "the thread stopped"
        );
        drop(s);
    }

    #[test]
    fn a_store_is_scheduled_until_dropped_and_a_store_without_background_never() {
        let s = Store::new(Config::default().memory_limit(1 << 20)).unwrap();
        let id = s.inner.core().bg_id;
        assert!(registered(id));
        assert!(load().0 >= 1);
        drop(s);
        assert!(!registered(id));
        let s = Store::new(Config::default().memory_limit(1 << 20).background(false)).unwrap();
        assert!(!registered(s.inner.core().bg_id));
    }
}
