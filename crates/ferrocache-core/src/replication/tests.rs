//! Primary → replica → replica in one process: random changes during a full sync, the
//! stream in random read sizes, a partial resync; every store ends equal.

use super::*;
use crate::{ArithRequest, Config, DeleteRequest, GetOptions, Store, StoreMode, StoreRequest};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;

/// value, flags, cas, exptime, stale, base64 key
type Dump = BTreeMap<Vec<u8>, (Vec<u8>, u32, u64, u32, bool, bool)>;

fn store() -> Arc<Store> {
    Arc::new(Store::new(Config::default().background(false)).unwrap())
}

fn dump(s: &Store) -> Dump {
    let mut d = Dump::new();
    for shard in 0..s.shard_count() {
        s.visit_shard(shard, |it| {
            d.insert(
                it.key.to_vec(),
                (
                    it.value.to_vec(),
                    it.flags,
                    it.cas,
                    it.exptime,
                    it.stale,
                    it.key_binary,
                ),
            );
        });
    }
    d
}

fn random_op(s: &Store, rng: &mut SmallRng) {
    let key = format!("k{}", rng.gen_range(0..200)).into_bytes();
    let val = format!("{}", rng.gen_range(0..1000)).into_bytes();
    let exp = if rng.gen_bool(0.1) { 1000 } else { 0 };
    match rng.gen_range(0..13) {
        0..=2 => {
            let _ = s.store(&StoreRequest {
                flags: rng.gen(),
                exptime: exp,
                ..StoreRequest::new(StoreMode::Set, &key, &val)
            });
        }
        3 => {
            let _ = s.store(&StoreRequest::new(StoreMode::Append, &key, b"x"));
        }
        4 => {
            let _ = s.store(&StoreRequest::new(StoreMode::Add, &key, &val));
        }
        5 => {
            let _ = s.arith(&ArithRequest {
                key: &key,
                incr: rng.gen(),
                delta: 3,
                cas: None,
                vivify: None,
                touch: None,
                new_cas: None,
            });
        }
        6 => {
            s.delete(&DeleteRequest {
                key: &key,
                ..Default::default()
            });
        }
        7 => {
            s.touch(&key, 5000);
        }
        8 => {
            let _ = s.get(
                &key,
                &GetOptions {
                    touch: Some(100),
                    ..Default::default()
                },
                |_| (),
            );
        }
        // meta: md I (stale, new ttl), mg N (a placeholder), ms b (a base64 key)
        9 => {
            s.delete(&DeleteRequest {
                key: &key,
                invalidate: true,
                exptime: Some(2000),
                ..Default::default()
            });
        }
        10 => {
            let _ = s.get(
                &key,
                &GetOptions {
                    vivify: Some(300),
                    ..Default::default()
                },
                |_| (),
            );
        }
        11 => {
            s.mark_key_binary(&key);
        }
        _ => {
            if rng.gen_range(0..50) == 0 {
                s.flush_all(0);
            }
        }
    }
}

struct Node {
    store: Arc<Store>,
    log: Arc<ReplLog>,
    applier: Applier,
}

fn node(primary: bool, backlog: usize) -> Node {
    let store = store();
    let log = Arc::new(ReplLog::new(backlog));
    if !primary {
        log.demote();
    }
    store.set_journal(log.clone());
    Node {
        store,
        log,
        applier: Applier::new(),
    }
}

/// Feeds `bytes` to `to` in random read sizes.
fn feed(to: &mut Node, bytes: &[u8], rng: &mut SmallRng) {
    let mut at = 0;
    while at < bytes.len() {
        let n = rng.gen_range(1..200).min(bytes.len() - at);
        to.applier
            .feed(&to.store, &to.log, &bytes[at..at + n])
            .unwrap();
        at += n;
    }
}

/// Runs a full sync of `to` from `from` with changes on `from` in between; returns the
/// stream offset reached.
fn full_sync(from: &Node, to: &mut Node, rng: &mut SmallRng, writes: bool) -> u64 {
    let Psync::Full { replid, offset } = from.log.psync("?", 0) else {
        panic!("expected a full sync")
    };
    to.log.follow(&replid, offset, true);
    to.applier.begin(&to.store, true);
    let mut fs = FullSync::of(&from.applier);
    loop {
        let mut out = Vec::new();
        let done = fs.next(&from.store, 4096, &mut out);
        feed(to, &out, rng);
        if writes {
            for _ in 0..50 {
                random_op(&from.store, rng);
            }
        }
        if done {
            break;
        }
    }
    assert!(!to.applier.in_snapshot());
    offset
}

fn pump(from: &Node, to: &mut Node, rng: &mut SmallRng) {
    let mut out = Vec::new();
    assert!(from.log.read(to.log.offset(), usize::MAX, &mut out));
    feed(to, &out, rng);
    assert_eq!(to.log.offset(), from.log.offset());
}

#[test]
fn chained_replicas_converge_through_full_and_partial_syncs() {
    let mut rng = SmallRng::seed_from_u64(11);
    let p = node(true, 1 << 20);
    let mut r1 = node(false, 1 << 20);
    let mut r2 = node(false, 1 << 20);
    for _ in 0..2000 {
        random_op(&p.store, &mut rng);
    }
    full_sync(&p, &mut r1, &mut rng, true);
    pump(&p, &mut r1, &mut rng);
    // r2 follows r1 (a replica of a replica)
    let Psync::Full { replid, offset } = r1.log.psync("?", 0) else {
        panic!()
    };
    assert_eq!(
        replid,
        p.log.info().replid,
        "a replica serves its upstream's history"
    );
    r2.log.follow(&replid, offset, true);
    r2.applier.begin(&r2.store, true);
    let mut fs = FullSync::new();
    loop {
        let mut out = Vec::new();
        let done = fs.next(&r1.store, 4096, &mut out);
        feed(&mut r2, &out, &mut rng);
        if done {
            break;
        }
    }
    for round in 0..20 {
        for _ in 0..300 {
            random_op(&p.store, &mut rng);
        }
        if round % 5 == 0 {
            p.log.heartbeat(1_700_000_000_000 + round);
        }
        pump(&p, &mut r1, &mut rng);
        if round != 7 {
            pump(&r1, &mut r2, &mut rng);
        }
        if round == 7 {
            // r2's link drops mid-frame: a new link from its offset continues
            let mut out = Vec::new();
            assert!(r1.log.read(r2.log.offset(), 100, &mut out));
            let _ = r2
                .applier
                .feed(&r2.store, &r2.log, &out[..out.len().min(30)]);
            let info = r2.log.info();
            assert_eq!(
                r1.log.psync(&info.replid, info.offset),
                Psync::Continue {
                    replid: info.replid.clone()
                }
            );
            r2.applier.begin(&r2.store, false);
        }
    }
    pump(&r1, &mut r2, &mut rng);
    let want = dump(&p.store);
    assert!(want.len() > 20);
    assert_eq!(dump(&r1.store), want);
    assert_eq!(dump(&r2.store), want);
    // promotion: r1 keeps its data, writes of its own go to r2 under the new id
    let new_id = r1.log.promote();
    r1.store
        .store(&StoreRequest::new(StoreMode::Set, b"after", b"promotion"))
        .unwrap();
    let info = r2.log.info();
    assert_eq!(
        r1.log.psync(&info.replid, info.offset),
        Psync::Continue {
            replid: new_id.clone()
        }
    );
    r2.log.follow(&new_id, info.offset, false);
    pump(&r1, &mut r2, &mut rng);
    assert_eq!(dump(&r2.store), dump(&r1.store));
    assert!(dump(&r2.store).contains_key(&b"after"[..]));
}

#[test]
fn expired_and_deleted_items_never_survive_on_the_replica() {
    let mut rng = SmallRng::seed_from_u64(3);
    let p = node(true, 1 << 20);
    let mut r = node(false, 1 << 20);
    full_sync(&p, &mut r, &mut rng, false);
    let now = p.store.now();
    // an absolute expiry in the past at apply time: not stored
    let mut out = Vec::new();
    stream::encode(
        &Frame::Change(crate::journal::Record::Set {
            key: b"old",
            value: b"v",
            flags: 0,
            exptime: now - 5,
            cas: 5,
            state: Default::default(),
        }),
        &mut out,
    );
    r.store
        .store(&StoreRequest::new(StoreMode::Set, b"old", b"stale"))
        .unwrap();
    r.applier.feed(&r.store, &r.log, &out).unwrap();
    assert!(r
        .store
        .get(b"old", &GetOptions::default(), |_| ())
        .is_none());
    p.store
        .store(&StoreRequest::new(StoreMode::Set, b"gone", b"v"))
        .unwrap();
    p.store.delete(&DeleteRequest {
        key: b"gone",
        ..Default::default()
    });
    let mut out = Vec::new();
    assert!(p.log.read(r.log.offset(), usize::MAX, &mut out));
    r.applier.feed(&r.store, &r.log, &out).unwrap();
    assert!(r
        .store
        .get(b"gone", &GetOptions::default(), |_| ())
        .is_none());
}

#[test]
fn a_damaged_frame_stops_the_link() {
    let p = node(true, 1 << 20);
    let mut r = node(false, 1 << 20);
    let _ = p.log.psync("?", 0);
    p.store
        .store(&StoreRequest::new(StoreMode::Set, b"a", b"1"))
        .unwrap();
    p.store
        .store(&StoreRequest::new(StoreMode::Set, b"b", b"2"))
        .unwrap();
    let mut out = Vec::new();
    assert!(p.log.read(0, usize::MAX, &mut out));
    let last = out.len() - 3;
    out[last] ^= 0xff;
    r.applier.begin(&r.store, false);
    assert!(r.applier.feed(&r.store, &r.log, &out).is_err());
    assert!(r.store.get(b"a", &GetOptions::default(), |_| ()).is_some());
    assert!(r.store.get(b"b", &GetOptions::default(), |_| ()).is_none());
    assert!(r.log.offset() > 0 && r.log.offset() < out.len() as u64);
}

#[test]
fn the_append_only_log_and_replication_both_get_every_change() {
    let dir = std::env::temp_dir().join(format!("ferrocache-repl-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = SmallRng::seed_from_u64(21);
    let p = node(true, 1 << 20);
    let (aof, _) = crate::aof::open(&p.store, &dir, crate::aof::Fsync::Always).unwrap();
    let mut r = node(false, 1 << 20);
    full_sync(&p, &mut r, &mut rng, false);
    for _ in 0..1500 {
        random_op(&p.store, &mut rng);
    }
    pump(&p, &mut r, &mut rng);
    aof.sync().unwrap();
    drop(aof);
    let replayed = store();
    let (_again, report) = crate::aof::open(&replayed, &dir, crate::aof::Fsync::Always).unwrap();
    assert!(report.records > 300, "{} records replayed", report.records);
    let want = dump(&p.store);
    assert_eq!(dump(&r.store), want);
    assert_eq!(dump(&replayed), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_miss_on_the_primary_removes_a_copy_only_the_replica_still_has() {
    // the primary evicted these keys (evictions are not replicated); the replica kept them
    let mut rng = SmallRng::seed_from_u64(5);
    let p = node(true, 1 << 20);
    let mut r = node(false, 1 << 20);
    full_sync(&p, &mut r, &mut rng, false);
    let keys: [&[u8]; 8] = [
        b"del", b"incr", b"touch", b"cas", b"gat", b"replace", b"append", b"prepend",
    ];
    for k in keys {
        r.store
            .store(&StoreRequest::new(StoreMode::Set, k, b"7"))
            .unwrap();
    }
    assert_eq!(
        p.store.delete(&DeleteRequest {
            key: b"del",
            ..Default::default()
        }),
        crate::DeleteStatus::NotFound
    );
    let _ = p.store.arith(&ArithRequest {
        key: b"incr",
        incr: true,
        delta: 1,
        cas: None,
        vivify: None,
        touch: None,
        new_cas: None,
    });
    assert!(!p.store.touch(b"touch", 10));
    let _ = p.store.store(&StoreRequest {
        cas: Some(3),
        ..StoreRequest::new(StoreMode::Set, b"cas", b"x")
    });
    let gat = GetOptions {
        touch: Some(10),
        ..Default::default()
    };
    assert!(p.store.get(b"gat", &gat, |_| ()).is_none());
    let misses: [(&[u8], StoreMode); 3] = [
        (b"replace", StoreMode::Replace),
        (b"append", StoreMode::Append),
        (b"prepend", StoreMode::Prepend),
    ];
    for (k, mode) in misses {
        let _ = p.store.store(&StoreRequest::new(mode, k, b"x"));
    }
    pump(&p, &mut r, &mut rng);
    for k in keys {
        assert!(
            r.store.get(k, &GetOptions::default(), |_| ()).is_none(),
            "{} survived on the replica",
            String::from_utf8_lossy(k)
        );
    }
}

/// A node whose store and log run on `clock`.
fn node_on(clock: &crate::Clock, primary: bool) -> Node {
    let store =
        Arc::new(Store::new(Config::default().background(false).clock(clock.clone())).unwrap());
    let log = Arc::new(ReplLog::with_time(1 << 20, store.time()));
    if !primary {
        log.demote();
    }
    store.set_journal(log.clone());
    Node {
        store,
        log,
        applier: Applier::new(),
    }
}

fn set_key(s: &Store, key: &str) {
    s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), b"v"))
        .unwrap();
}

fn keys(s: &Store) -> Vec<String> {
    dump(s)
        .into_keys()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn a_delayed_flush_pending_at_a_full_sync_reaches_the_replica() {
    let mut rng = SmallRng::seed_from_u64(9);
    let clock = crate::Clock::manual(1_700_000_000);
    let p = node_on(&clock, true);
    for i in 0..20 {
        set_key(&p.store, &format!("k{i}"));
    }
    p.store.flush_all(10);
    assert_eq!(p.store.pending_flush_deadline(), Some(1_700_000_010));
    let mut r = node_on(&clock, false);
    full_sync(&p, &mut r, &mut rng, false);
    assert_eq!(
        dump(&r.store).len(),
        20,
        "the items live until the deadline"
    );
    clock.advance(11);
    assert_eq!(p.store.pending_flush_deadline(), None, "it took effect");
    assert!(dump(&p.store).is_empty());
    // the primary's next frame carries the deadline's mark
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert_eq!(
        dump(&r.store),
        dump(&p.store),
        "the replica drops them at the same deadline"
    );
}

/// A primary whose clock stepped back (its store's time ahead of the clock) sends a pending
/// flush's deadline in the clock's seconds, as it sends exptimes: a replica whose clock
/// did not step drops the items when the primary does, not the step's seconds later.
#[test]
fn a_pending_flush_reaches_a_replica_in_the_clocks_seconds_after_a_step_back() {
    let mut rng = SmallRng::seed_from_u64(11);
    let t = 1_700_000_000;
    let (pc, rc) = (crate::Clock::manual(t + 100), crate::Clock::manual(t));
    let p = node_on(&pc, true);
    for i in 0..20 {
        set_key(&p.store, &format!("k{i}"));
    }
    pc.set(t);
    assert_eq!(p.store.now(), t + 100, "the store's time stays");
    p.store.flush_all(10);
    assert_eq!(
        p.store.pending_flush_deadline(),
        Some(t + 10),
        "clock seconds"
    );
    let mut r = node_on(&rc, false);
    full_sync(&p, &mut r, &mut rng, false);
    assert_eq!(
        dump(&r.store).len(),
        20,
        "the items live until the deadline"
    );
    pc.advance(10);
    rc.advance(10);
    assert!(dump(&p.store).is_empty(), "the primary's deadline came");
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert!(
        dump(&r.store).is_empty(),
        "the replica's deadline came with it"
    );
}

/// A delayed flush pending when the primary's clock steps back: the primary's store acts on
/// it by its own time, and the mark it streams must come then, not when the clock reaches
/// the deadline it was recorded with (the replica would drop what was set in between).
#[test]
fn a_flush_pending_across_a_step_back_is_marked_to_replicas_when_it_acted() {
    let mut rng = SmallRng::seed_from_u64(12);
    let t = 1_700_000_000;
    let (pc, rc) = (crate::Clock::manual(t), crate::Clock::manual(t));
    let p = node_on(&pc, true);
    let mut r = node_on(&rc, false);
    set_key(&p.store, "before");
    full_sync(&p, &mut r, &mut rng, false);
    p.store.flush_all(10);
    pump(&p, &mut r, &mut rng);
    pc.set(t - 100);
    assert_eq!(p.store.now(), t, "the store's time stays");
    pc.advance(20);
    set_key(&p.store, "after");
    pump(&p, &mut r, &mut rng);
    assert_eq!(keys(&p.store), ["after"]);
    // the replica's clock reaches the deadline; the primary's heartbeats go on
    rc.set(t + 21);
    pc.advance(100);
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert_eq!(
        keys(&r.store),
        keys(&p.store),
        "the replica keeps what the primary keeps"
    );
}

#[test]
fn a_replica_applying_records_after_a_delayed_flush_deadline_drops_those_from_before_it() {
    let mut rng = SmallRng::seed_from_u64(10);
    let clock = crate::Clock::manual(1_700_000_000);
    let p = node_on(&clock, true);
    let mut r = node_on(&clock, false);
    full_sync(&p, &mut r, &mut rng, false);
    set_key(&p.store, "before");
    p.store.flush_all(2);
    set_key(&p.store, "during");
    clock.advance(3);
    set_key(&p.store, "after");
    assert_eq!(keys(&p.store), ["after"]);
    // the replica reads all of it only now, past the deadline (lag, or a partial resync)
    pump(&p, &mut r, &mut rng);
    assert_eq!(keys(&r.store), ["after"], "'during' was flushed upstream");

    // an idle primary: its next heartbeat carries the mark
    set_key(&p.store, "during2");
    p.store.flush_all(2);
    set_key(&p.store, "during3");
    clock.advance(3);
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert!(keys(&p.store).is_empty());
    assert!(keys(&r.store).is_empty(), "{:?}", keys(&r.store));

    // a replica of r, promoted after r saw the deadline but before it passed, marks it
    let mut q = node_on(&clock, false);
    full_sync(&r, &mut q, &mut rng, false);
    set_key(&p.store, "x");
    p.store.flush_all(2);
    set_key(&p.store, "y");
    pump(&p, &mut r, &mut rng);
    pump(&r, &mut q, &mut rng);
    // as NativeReplication::promote: the held flush becomes the store's own
    q.applier.end(&q.store);
    q.log.promote();
    let mut z = node_on(&clock, false);
    full_sync(&q, &mut z, &mut rng, false);
    set_key(&q.store, "w");
    clock.advance(3);
    set_key(&q.store, "z");
    pump(&q, &mut z, &mut rng);
    assert_eq!(keys(&q.store), ["z"]);
    assert_eq!(keys(&z.store), ["z"]);
}

/// A replica that receives a delayed flush only after its deadline (it lagged past it)
/// holds it for the primary's mark: a cancel that followed on the primary keeps the items
/// there as on the primary (the replica flushed at once and lost them), and a later
/// flush_all replaces it as it did on the primary.
#[test]
fn a_replica_lagging_past_a_flush_deadline_keeps_what_a_cancel_or_a_later_flush_kept() {
    let mut rng = SmallRng::seed_from_u64(13);
    let clock = crate::Clock::manual(1_700_000_000);
    let p = node_on(&clock, true);
    let mut r = node_on(&clock, false);
    full_sync(&p, &mut r, &mut rng, false);
    set_key(&p.store, "b");
    p.store.flush_all_as_memcached(2);
    // `flush_all <unix time before the start>`: memcached's cancel
    p.store.flush_all_as_memcached(2_592_001);
    set_key(&p.store, "c");
    clock.advance(3);
    set_key(&p.store, "d");
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert_eq!(keys(&p.store), ["b", "c", "d"]);
    assert_eq!(keys(&r.store), keys(&p.store), "the cancel kept b");

    // flush_all 2, then flush_all 10 a second later: the second deadline replaces the first
    p.store.flush_all(2);
    clock.advance(1);
    p.store.flush_all(10);
    set_key(&p.store, "e");
    clock.advance(2);
    set_key(&p.store, "f");
    pump(&p, &mut r, &mut rng);
    assert_eq!(keys(&p.store), ["b", "c", "d", "e", "f"]);
    assert_eq!(
        keys(&r.store),
        keys(&p.store),
        "the first deadline never came"
    );
    clock.advance(9);
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert!(keys(&p.store).is_empty());
    assert!(keys(&r.store).is_empty(), "{:?}", keys(&r.store));
}

/// A flush held for its mark takes effect when the mark cannot come from this upstream: at
/// a promotion (the primary's deadline passed before it wrote a frame), and at a heartbeat
/// a second past the deadline with no mark before it (a primary that does not mark).
#[test]
fn a_held_flush_takes_effect_at_a_promotion_or_an_unmarked_heartbeat() {
    use crate::journal::Record;
    let mut rng = SmallRng::seed_from_u64(14);
    let t = 1_700_000_000;
    let clock = crate::Clock::manual(t);
    let p = node_on(&clock, true);
    let mut r = node_on(&clock, false);
    full_sync(&p, &mut r, &mut rng, false);
    set_key(&p.store, "b");
    p.store.flush_all(2);
    clock.advance(3);
    // the primary wrote nothing since its deadline: no mark yet
    pump(&p, &mut r, &mut rng);
    assert!(keys(&p.store).is_empty());
    assert_eq!(keys(&r.store), ["b"], "held for the mark");
    assert_eq!(r.applier.held_flush(), Some(t + 2));
    r.applier.end(&r.store);
    r.log.promote();
    assert!(
        keys(&r.store).is_empty(),
        "promoted: the deadline has passed"
    );

    let mut q = node_on(&clock, false);
    full_sync(&p, &mut q, &mut rng, false);
    set_key(&q.store, "x");
    let mut bytes = Vec::new();
    stream::encode(&Frame::Change(Record::Flush { at: t + 3 }), &mut bytes);
    clock.advance(1);
    feed(&mut q, &bytes, &mut rng);
    assert_eq!(keys(&q.store), ["x"], "held for the mark");
    bytes.clear();
    stream::encode(
        &Frame::Heartbeat {
            unix_ms: (u64::from(t) + 3) * 1000 + 900,
            offset: 0,
        },
        &mut bytes,
    );
    feed(&mut q, &bytes, &mut rng);
    assert_eq!(
        keys(&q.store),
        ["x"],
        "within the deadline's second: a mark may still come"
    );
    bytes.clear();
    stream::encode(
        &Frame::Heartbeat {
            unix_ms: (u64::from(t) + 4) * 1000,
            offset: 0,
        },
        &mut bytes,
    );
    feed(&mut q, &bytes, &mut rng);
    assert!(
        keys(&q.store).is_empty(),
        "a second later, no mark: taken as the deadline"
    );
}

/// A full sync whose pending flush's deadline passes while the snapshot travels: the items
/// that follow the flush record are from before the deadline; a replica promoted before the
/// stream's mark arrives drops them as the primary did (it kept them, while its own log
/// marked the deadline for its replicas).
#[test]
fn a_full_sync_whose_flush_deadline_passed_on_the_way_holds_it_for_a_promotion() {
    let mut rng = SmallRng::seed_from_u64(15);
    let clock = crate::Clock::manual(1_700_000_000);
    let p = node_on(&clock, true);
    for i in 0..20 {
        set_key(&p.store, &format!("k{i}"));
    }
    p.store.flush_all(2);
    let Psync::Full { replid, offset } = p.log.psync("?", 0) else {
        panic!("expected a full sync")
    };
    let (mut snapshot, mut fs) = (Vec::new(), FullSync::new());
    while !fs.next(&p.store, usize::MAX, &mut snapshot) {}
    clock.advance(3);
    assert!(keys(&p.store).is_empty(), "the primary's deadline came");
    let mut r = node_on(&clock, false);
    r.log.follow(&replid, offset, true);
    r.applier.begin(&r.store, true);
    feed(&mut r, &snapshot, &mut rng);
    assert!(!r.applier.in_snapshot());
    assert_eq!(keys(&r.store).len(), 20, "held for the mark");
    r.applier.end(&r.store);
    r.log.promote();
    assert!(keys(&r.store).is_empty(), "promoted past the deadline");
}

/// A replica that had the delayed flush in time and gets the cancel after its own clock
/// reached the deadline (its upstream was stopped: a replica of a replica) keeps the items
/// the primary kept even when reads (or the crawler) ran in between: the flush is held for
/// its mark, never hidden by this clock. Before, the items were hidden at this clock's
/// deadline and unlinked by the next read, and the cancel found nothing to keep (measured:
/// 200 items on the primary, 0 on such a replica).
#[test]
fn a_cancel_after_the_replicas_own_deadline_keeps_items_that_reads_would_have_unlinked() {
    let mut rng = SmallRng::seed_from_u64(16);
    let clock = crate::Clock::manual(1_700_000_000);
    let p = node_on(&clock, true);
    let mut r = node_on(&clock, false);
    for i in 0..20 {
        set_key(&p.store, &format!("k{i}"));
    }
    full_sync(&p, &mut r, &mut rng, false);
    p.store.flush_all(3);
    pump(&p, &mut r, &mut rng);
    p.store.flush_all_as_memcached(2_592_001);
    clock.advance(4);
    // reads on the replica before the cancel arrives
    for i in 0..20 {
        let _ = r
            .store
            .get(format!("k{i}").as_bytes(), &GetOptions::default(), |_| ());
    }
    assert!(p.log.heartbeat(0));
    pump(&p, &mut r, &mut rng);
    assert_eq!(keys(&p.store).len(), 20, "the cancel kept them");
    assert_eq!(keys(&r.store), keys(&p.store));
}

/// A replica holding a delayed flush for its mark passes it on in a full sync to its own
/// replica (a chain): the held flush is no store's pending one, and without it the lower
/// replica, promoted before the deadline, kept every item for good while the primary and
/// the replica above dropped them at the deadline.
#[test]
fn a_full_sync_from_a_replica_holding_a_flush_passes_the_flush_on() {
    let mut rng = SmallRng::seed_from_u64(17);
    let clock = crate::Clock::manual(1_700_000_000);
    let p = node_on(&clock, true);
    let mut r = node_on(&clock, false);
    for i in 0..20 {
        set_key(&p.store, &format!("k{i}"));
    }
    full_sync(&p, &mut r, &mut rng, false);
    p.store.flush_all(10);
    pump(&p, &mut r, &mut rng);
    assert_eq!(r.applier.held_flush(), Some(1_700_000_010));
    // the lower replica syncs in full from the holding one
    let mut q = node_on(&clock, false);
    full_sync(&r, &mut q, &mut rng, false);
    assert_eq!(
        keys(&q.store).len(),
        20,
        "the items live until the deadline"
    );
    assert_eq!(q.applier.held_flush(), Some(1_700_000_010));
    // promoted before the deadline: the flush is its own, at the primary's deadline
    q.applier.end(&q.store);
    q.log.promote();
    clock.advance(11);
    assert!(keys(&p.store).is_empty());
    assert!(
        keys(&q.store).is_empty(),
        "dropped at the deadline as on the primary"
    );
}

/// A failover: the replica is promoted while a delayed flush is pending, and the old
/// primary continues from the promoted one's backlog (a partial resync) with the flush
/// still pending in its own store. It holds that flush for the new primary's mark as any
/// replica holds one: a cancel on the new primary that reached it after its own clock's
/// deadline (it lagged) keeps the items there too. Before, its store hid them at its own
/// deadline, a read unlinked them, and the cancel found nothing to keep (20 items on the
/// new primary, none on the old one).
#[test]
fn an_old_primary_following_its_promoted_replica_holds_its_pending_flush_for_the_mark() {
    let mut rng = SmallRng::seed_from_u64(18);
    let clock = crate::Clock::manual(1_700_000_000);
    let mut p = node_on(&clock, true);
    let mut r = node_on(&clock, false);
    for i in 0..20 {
        set_key(&p.store, &format!("k{i}"));
    }
    full_sync(&p, &mut r, &mut rng, false);
    p.store.flush_all(3);
    pump(&p, &mut r, &mut rng);
    // failover: r promoted, p follows it from its own offset
    r.applier.end(&r.store);
    r.log.promote();
    p.log.demote();
    let old_id = p.log.info().replid;
    let Psync::Continue { replid } = r.log.psync(&old_id, p.log.offset()) else {
        panic!("expected a partial resync")
    };
    p.log.follow(&replid, p.log.offset(), false);
    p.applier.begin(&p.store, false);
    // the cancel on the new primary; p reads past its own deadline before it arrives
    r.store.flush_all_as_memcached(2_592_001);
    clock.advance(4);
    for i in 0..20 {
        let _ = p
            .store
            .get(format!("k{i}").as_bytes(), &GetOptions::default(), |_| ());
    }
    assert!(r.log.heartbeat(0));
    pump(&r, &mut p, &mut rng);
    assert_eq!(keys(&r.store).len(), 20, "the cancel kept them");
    assert_eq!(keys(&p.store), keys(&r.store));
}
