//! `watch`: a session becomes a watcher of the log stream; other sessions' lookups and
//! stores show up in its buffer as memcached 1.6.18 words them (measured against it; the
//! server-level differential test is `__test__/watch.test.ts`).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

fn server() -> (Arc<Store>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    (store, Arc::new(ServerInfo::new("1.6.18")))
}

fn feed(s: &mut Session<Arc<Store>>, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert_eq!(s.feed(input, &mut out), Control::Continue);
    out
}

/// What watcher `id` has waiting, its `ts=` and `gid=` fields dropped.
fn lines(info: &ServerInfo, id: u64) -> Vec<String> {
    let mut out = Vec::new();
    info.watch.take(id, &mut out);
    String::from_utf8(out)
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("ts=") {
            Some(rest) => rest.splitn(3, ' ').nth(2).unwrap().to_string(),
            None => l.to_string(),
        })
        .collect()
}

#[test]
fn lookups_and_stores_are_logged_in_memcached_words() {
    let (store, info) = server();
    let mut w = Session::new(store.clone(), info.clone());
    // the rest of the read is ignored, as memcached hands the connection to its logger
    assert_eq!(
        feed(&mut w, b"watch fetchers mutations\r\nversion\r\n"),
        b""
    );
    let id = w.watcher().expect("a watcher");
    assert_eq!(lines(&info, id), ["OK\r"]);
    let mut c = Session::new(store.clone(), info.clone());
    c.set_fd(23);
    feed(
        &mut c,
        b"get a\r\nset a 5 100 3\r\nabc\r\ngets a b\r\nappend a 0 0 1\r\nz\r\n\
          add n 0 0 1\r\nx\r\nincr n 1\r\ndelete a\r\nmg n v\r\nms m 2 T50\r\nhi\r\nms m 2 ME\r\nhi\r\n\
          cas n 0 0 1 999\r\n5\r\nget k%y\r\n",
    );
    let want = [
        "type=item_get key=a status=not_found clsid=0 cfd=23 size=0",
        "type=item_get key=a status=not_found clsid=0 cfd=23 size=0",
        "type=item_store key=a status=stored cmd=set ttl=100 clsid=1 cfd=23 size=3",
        "type=item_get key=a status=found clsid=1 cfd=23 size=3",
        "type=item_get key=b status=not_found clsid=0 cfd=23 size=0",
        "type=item_get key=a status=found clsid=1 cfd=23 size=3",
        "type=item_store key=a status=stored cmd=append ttl=100 clsid=1 cfd=23 size=4",
        "type=item_get key=n status=not_found clsid=0 cfd=23 size=0",
        "type=item_store key=n status=stored cmd=add ttl=0 clsid=1 cfd=23 size=1",
        "type=item_get key=n status=found clsid=1 cfd=23 size=1",
        "type=item_get key=a status=found clsid=1 cfd=23 size=4",
        "type=item_get key=n status=found clsid=1 cfd=23 size=1",
        "type=item_get key=m status=not_found clsid=0 cfd=23 size=0",
        "type=item_store key=m status=stored cmd=set ttl=50 clsid=1 cfd=23 size=2",
        "type=item_get key=m status=found clsid=1 cfd=23 size=2",
        "type=item_store key=m status=not_stored cmd=add ttl=0 clsid=1 cfd=23 size=2",
        "type=item_get key=n status=found clsid=1 cfd=23 size=1",
        "type=item_store key=n status=exists cmd=cas ttl=0 clsid=1 cfd=23 size=1",
        "type=item_get key=k%25y status=not_found clsid=0 cfd=23 size=0",
    ];
    assert_eq!(lines(&info, id), want);
    // the watcher's own input does nothing
    assert_eq!(feed(&mut w, b"set x 0 0 1\r\nx\r\n"), b"");
    assert_eq!(feed(&mut c, b"get x\r\n"), b"END\r\n");
    let s = info.watch.stats();
    assert_eq!((s.worker_written, s.watcher_sent, s.watchers), (20, 20, 1));
    drop(w);
    assert_eq!(info.watch.stats().watchers, 0);
    feed(&mut c, b"get a\r\n");
    assert_eq!(info.watch.stats().worker_written, 20, "nobody watches");
}

#[test]
fn evictions_are_logged_in_memcached_words() {
    let clock = ferrocache_core::Clock::manual(1_700_000_000);
    let store = Arc::new(
        Store::new(
            Config::default()
                .memory_limit(2 << 20)
                .shards(1)
                .slab_automove(false)
                .background(false)
                .clock(clock.clone()),
        )
        .unwrap(),
    );
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut c = Session::new(store.clone(), info.clone());
    let value = [b'v'; 500];
    let set = |c: &mut Session<Arc<Store>>, key: &[u8], exptime: u32| {
        let mut req = b"set ".to_vec();
        req.extend_from_slice(key);
        req.extend_from_slice(format!(" 0 {exptime} 500 noreply\r\n").as_bytes());
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        assert_eq!(feed(c, &req), b"");
    };
    // evictions before any watcher asked are not heard
    for i in 0..5000 {
        set(&mut c, format!("early{i}").as_bytes(), 0);
    }
    let before = store.stats().evictions;
    assert!(before > 0);
    let mut w = Session::new(store.clone(), info.clone());
    let mut other = Session::new(store.clone(), info.clone());
    assert_eq!(feed(&mut w, b"watch evictions\r\n"), b"");
    assert_eq!(feed(&mut other, b"watch fetchers\r\n"), b"");
    let (id, other) = (w.watcher().unwrap(), other.watcher().unwrap());
    let mut heard = lines(&info, id);
    assert_eq!(heard, ["OK\r"]);
    heard.clear();
    clock.advance(3);
    // its room evicts an early item, 3 s after its store
    set(&mut c, b"b%20\x01", 1000);
    clock.advance(2);
    for i in 0..5000 {
        set(&mut c, format!("late{i}").as_bytes(), 0);
        if i % 500 == 0 {
            heard.extend(lines(&info, id));
        }
    }
    heard.extend(lines(&info, id));
    assert_eq!(heard.len() as u64, store.stats().evictions - before);
    // memcached 1.6.18 wrote `key=b%2520%01 fetch=no ttl=987 la=13 clsid=9 size=500` for
    // this key 13 s after its `set` with ttl 1000 (-m 2, 500-byte values)
    let odd: Vec<&String> = heard.iter().filter(|l| l.contains("key=b%")).collect();
    assert_eq!(
        odd,
        ["type=eviction key=b%2520%01 fetch=no ttl=998 la=2 clsid=9 size=500"]
    );
    assert!(heard[0].ends_with(" fetch=no ttl=-1 la=3 clsid=9 size=500"));
    for l in heard.iter().skip(1).filter(|l| !l.contains("key=b%")) {
        let rest = l.strip_prefix("type=eviction key=").unwrap();
        let (key, rest) = rest.split_once(' ').unwrap();
        assert!(key.starts_with("early") || key.starts_with("late"), "{l}");
        let la = if key.starts_with("early") { 5 } else { 0 };
        assert_eq!(
            rest,
            format!("fetch=no ttl=-1 la={la} clsid=9 size=500"),
            "{l}"
        );
    }
    // the fetchers watcher hears the sets' lookups, none of the evictions
    let fetched = lines(&info, other);
    assert!(fetched
        .iter()
        .any(|l| l.starts_with("type=item_get key=late9 ")));
    assert_eq!(fetched.iter().filter(|l| l.contains("eviction")).count(), 0);
}

#[test]
fn a_value_too_large_logs_memcached_too_large_store() {
    let (store, info) = server();
    let mut w = Session::new(store.clone(), info.clone());
    assert_eq!(feed(&mut w, b"watch fetchers mutations\r\n"), b"");
    let id = w.watcher().unwrap();
    assert_eq!(lines(&info, id), ["OK\r"]);
    let mut c = Session::new(store.clone(), info.clone());
    c.set_fd(23);
    assert_eq!(feed(&mut c, b"set k4 0 0 1 noreply\r\na\r\n"), b"");
    assert_eq!(lines(&info, id).len(), 2);
    let big = vec![b'x'; 1_048_577];
    for head in [
        &b"set k1 0 100 1048577"[..],
        b"add k2 0 0 1048577",
        b"append k3 0 0 1048577 noreply",
        b"cas k4 0 0 1048577 5",
        b"ms m1 1048577 T100",
        b"ms m2 1048577 C5",
        b"ms m3 1048577 MA C5",
    ] {
        let mut req = head.to_vec();
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(&big);
        req.extend_from_slice(b"\r\n");
        let want: &[u8] = if head.ends_with(b"noreply") {
            b""
        } else {
            b"SERVER_ERROR object too large for cache\r\n"
        };
        assert_eq!(feed(&mut c, &req), want);
    }
    // as memcached 1.6.18 logged these requests, but for `clsid=` and `cfd=` of the
    // too_large lines: there memcached prints values its logger never set
    let tail = "ttl=0 clsid=0 cfd=23 size=0";
    let miss = "status=not_found clsid=0 cfd=23 size=0";
    assert_eq!(
        lines(&info, id),
        [
            format!("type=item_store key=k1 status=too_large cmd=set {tail}"),
            format!("type=item_get key=k1 {miss}"),
            format!("type=item_store key=k2 status=too_large cmd=add {tail}"),
            format!("type=item_store key=k3 status=too_large cmd=append {tail}"),
            format!("type=item_store key=k4 status=too_large cmd=cas {tail}"),
            format!("type=item_store key=m1 status=too_large cmd=set {tail}"),
            format!("type=item_get key=m1 {miss}"),
            format!("type=item_store key=m2 status=too_large cmd=cas {tail}"),
            format!("type=item_get key=m2 {miss}"),
            format!("type=item_store key=m3 status=too_large cmd=append {tail}"),
            format!("type=item_get key=m3 {miss}"),
        ]
    );
    // a too large cas leaves the item (memcached unlinks only for set)
    assert_eq!(feed(&mut c, b"get k4\r\n"), b"VALUE k4 0 1\r\na\r\nEND\r\n");
}

#[test]
fn refused_filters_answer_error_and_noreply_silences_it() {
    let (store, info) = server();
    let mut s = Session::new(store, info.clone());
    assert_eq!(feed(&mut s, b"watch fetchers bogus\r\n"), b"ERROR\r\n");
    assert_eq!(feed(&mut s, b"watch deletions\r\n"), b"ERROR\r\n");
    assert_eq!(
        feed(
            &mut s,
            b"watch noreply\r\nwatch fetchers noreply\r\nversion\r\n"
        ),
        b"VERSION 1.6.18\r\n"
    );
    assert_eq!(s.watcher(), None);
    assert_eq!(info.watch.stats().watchers, 0);
}

#[test]
fn sysevents_show_the_crawler_rounds_and_mix_with_other_filters() {
    let clock = ferrocache_core::Clock::manual(1_700_000_000);
    let store = Arc::new(
        Store::new(
            Config::default()
                .shards(1)
                .background(false)
                .clock(clock.clone()),
        )
        .unwrap(),
    );
    let info = Arc::new(ServerInfo::new("1.6.18"));
    // accepted alone and with other filters, as memcached 1.6.18
    let (mut sys, mut both, mut fetch) = (
        Session::new(store.clone(), info.clone()),
        Session::new(store.clone(), info.clone()),
        Session::new(store.clone(), info.clone()),
    );
    assert_eq!(feed(&mut sys, b"watch sysevents\r\n"), b"");
    assert_eq!(feed(&mut both, b"watch sysevents fetchers\r\n"), b"");
    assert_eq!(feed(&mut fetch, b"watch fetchers\r\n"), b"");
    let ids = [sys.watcher(), both.watcher(), fetch.watcher()].map(Option::unwrap);
    for id in ids {
        assert_eq!(lines(&info, id), ["OK\r"]);
    }
    let mut c = Session::new(store.clone(), info.clone());
    c.set_fd(7);
    feed(
        &mut c,
        b"set a 0 5 1 noreply\r\na\r\nset b 0 0 1 noreply\r\nb\r\n",
    );
    clock.advance(10);
    store.maintain();
    // one round of the expiry walk: class 1's two items, in COLD (HOT holds 20% of a
    // class), one expired; no background thread, so no next_run
    let round = "type=lru_crawler crawler=1 lru=cold since_run=0 elapsed=0 examined=2 reclaimed=1";
    assert_eq!(lines(&info, ids[0]), [round]);
    let get = |k: &str| format!("type=item_get key={k} status=not_found clsid=0 cfd=7 size=0");
    assert_eq!(
        lines(&info, ids[1]),
        [get("a"), get("b"), round.to_string()]
    );
    assert_eq!(lines(&info, ids[2]), [get("a"), get("b")]);
}

#[test]
fn the_twenty_first_watcher_is_refused_and_stays_a_client() {
    let (store, info) = server();
    let mut watchers: Vec<_> = (0..20)
        .map(|_| {
            let mut w = Session::new(store.clone(), info.clone());
            assert_eq!(feed(&mut w, b"watch\r\n"), b"");
            w
        })
        .collect();
    let mut extra = Session::new(store.clone(), info.clone());
    assert_eq!(
        feed(&mut extra, b"watch\r\nversion\r\n"),
        b"WATCHER_TOO_MANY log watcher limit reached\r\nVERSION 1.6.18\r\n"
    );
    watchers.pop();
    assert_eq!(feed(&mut extra, b"watch mutations\r\n"), b"");
    assert!(extra.watcher().is_some());
}

#[test]
fn binary_requests_are_logged_too() {
    let (store, info) = server();
    let mut w = Session::new(store.clone(), info.clone());
    feed(&mut w, b"watch fetchers mutations\r\n");
    let id = w.watcher().unwrap();
    let mut c = Session::new(store, info.clone());
    c.set_fd(7);
    // binary SET bk = "vv" (flags 0, exptime 0), then GET bk
    let mut set = vec![0x80, 0x01, 0, 2, 8, 0, 0, 0, 0, 0, 0, 12];
    set.extend_from_slice(&[0; 12]);
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(b"bkvv");
    let mut get = vec![0x80, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2];
    get.extend_from_slice(&[0; 12]);
    get.extend_from_slice(b"bk");
    feed(&mut c, &[set, get].concat());
    assert_eq!(
        lines(&info, id),
        [
            "OK\r",
            "type=item_get key=bk status=not_found clsid=0 cfd=7 size=0",
            "type=item_store key=bk status=stored cmd=set ttl=0 clsid=1 cfd=7 size=2",
            "type=item_get key=bk status=found clsid=1 cfd=7 size=2",
        ]
    );
}
