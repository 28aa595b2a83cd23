//! memcached 1.6.18's runtime admin commands over the text protocol, with the real engine:
//! `cache_memlimit`, `slabs reassign|automove`, `lru_crawler …`. Every expected reply was
//! measured against memcached 1.6.18 (docs/protocol.md).

mod common;

use std::sync::Arc;

use common::mock_session;
use ferrocache_core::{Clock, Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn session(config: Config) -> (Session<Arc<Store>>, Arc<Store>) {
    let store = Arc::new(Store::new(config.background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    info.set_settings(
        [
            ("maxbytes", "67108864"),
            ("slab_automove", "1"),
            ("lru_crawler", "yes"),
            ("lru_crawler_sleep", "100"),
            ("lru_crawler_tocrawl", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    (Session::new(store.clone(), info), store)
}

/// Sends each line alone and returns its reply.
fn ask(s: &mut Session<Arc<Store>>, line: &str) -> String {
    let mut out = Vec::new();
    s.feed(format!("{line}\r\n").as_bytes(), &mut out);
    String::from_utf8(out).unwrap()
}

fn stat(s: &mut Session<Arc<Store>>, cmd: &str, name: &str) -> Option<String> {
    let text = ask(s, cmd);
    text.split("\r\n")
        .filter_map(|l| l.strip_prefix("STAT "))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
}

fn fill(s: &mut Session<Arc<Store>>, prefix: &str, n: usize, len: usize, exptime: u32) {
    let value = "x".repeat(len);
    let mut input = String::new();
    for i in 0..n {
        input.push_str(&format!(
            "set {prefix}{i} 0 {exptime} {len} noreply\r\n{value}\r\n"
        ));
    }
    let mut out = Vec::new();
    s.feed(input.as_bytes(), &mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn cache_memlimit_replies_and_limits_as_memcached() {
    let (mut s, store) = session(Config::default().memory_limit(32 << 20));
    for (line, want) in [
        ("cache_memlimit", "ERROR\r\n"),
        (
            "cache_memlimit 7",
            "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        (
            "cache_memlimit 0",
            "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        ("cache_memlimit abc", "ERROR\r\n"),
        ("cache_memlimit -1", "ERROR\r\n"),
        ("cache_memlimit 12abc", "ERROR\r\n"),
        ("cache_memlimit 7 noreply", ""),
        ("cache_memlimit x noreply", ""),
        (
            "cache_memlimit 1000000001",
            "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n",
        ),
        // a 32-bit slot: 2^32 reads as 0
        (
            "cache_memlimit 4294967296",
            "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        // more than the page table can name
        (
            "cache_memlimit 1000000000",
            "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n",
        ),
        ("cache_memlimit 64 noreply extra", "ERROR\r\n"),
        ("cache_memlimit 64 a b c", "ERROR\r\n"),
        ("cache_memlimit 100 noreply", ""),
        ("cache_memlimit 48 extra", "OK\r\n"),
        ("cache_memlimit +16", "OK\r\n"),
    ] {
        assert_eq!(ask(&mut s, line), want, "{line}");
    }
    assert_eq!(stat(&mut s, "stats", "limit_maxbytes").unwrap(), "16777216");
    assert_eq!(
        stat(&mut s, "stats settings", "maxbytes").unwrap(),
        "16777216"
    );

    fill(&mut s, "k", 200_000, 100, 0);
    assert_eq!(store.stats().total_malloced, 16 << 20);
    assert_eq!(ask(&mut s, "cache_memlimit 8"), "OK\r\n");
    assert!(store.stats().total_malloced <= 8 << 20);
    fill(&mut s, "j", 50_000, 100, 0);
    assert!(store.stats().total_malloced <= 8 << 20);
    assert_eq!(
        ask(&mut s, "get j49999"),
        format!("VALUE j49999 0 100\r\n{}\r\nEND\r\n", "x".repeat(100))
    );
}

#[test]
fn slabs_reassign_and_automove_reply_as_memcached() {
    let (mut s, store) = session(Config::default().memory_limit(16 << 20));
    fill(&mut s, "a", 30_000, 20, 0); // class 1, 3 pages
    let n = store.slab_class_count();
    for (line, want) in [
        ("slabs", "ERROR\r\n"),
        ("slabs reassign", "ERROR\r\n"),
        ("slabs reassign 1", "ERROR\r\n"),
        (
            "slabs reassign 2 3",
            "NOSPARE source class has no spare pages\r\n",
        ),
        (
            "slabs reassign 1 1",
            "SAME src and dst class are identical\r\n",
        ),
        (
            "slabs reassign 0 0",
            "SAME src and dst class are identical\r\n",
        ),
        (
            "slabs reassign 0 1",
            "NOSPARE source class has no spare pages\r\n",
        ),
        (
            "slabs reassign 64 1",
            "BADCLASS invalid src or dst class id\r\n",
        ),
        (
            "slabs reassign -2 1",
            "BADCLASS invalid src or dst class id\r\n",
        ),
        (
            "slabs reassign a b",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "slabs reassign 1 2x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("slabs reassign 1 2 noreply", "ERROR\r\n"),
        ("slabs reassign 1 2 3", "ERROR\r\n"),
        ("slabs automove", "ERROR\r\n"),
        ("slabs automove 3", "ERROR\r\n"),
        (
            "slabs automove x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "slabs automove -1",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("slabs automove 2", "OK\r\n"),
        ("slabs automove 1 noreply", ""),
        ("slabs automove 0 x", "OK\r\n"),
        ("slabs automove ratio", "ERROR\r\n"),
        ("slabs foo bar", "ERROR\r\n"),
    ] {
        assert_eq!(ask(&mut s, line), want, "{line}");
    }
    assert_eq!(
        ask(&mut s, &format!("slabs reassign 1 {}", n + 1)),
        "BADCLASS invalid src or dst class id\r\n"
    );
    assert_eq!(
        stat(&mut s, "stats settings", "slab_automove").unwrap(),
        "0"
    );
    assert_eq!(stat(&mut s, "stats slabs", "1:total_pages").unwrap(), "3");
    assert_eq!(ask(&mut s, "slabs reassign 1 5"), "OK\r\n");
    assert_eq!(stat(&mut s, "stats slabs", "1:total_pages").unwrap(), "2");
    assert_eq!(stat(&mut s, "stats slabs", "5:total_pages").unwrap(), "1");
    assert_eq!(stat(&mut s, "stats", "slabs_moved").unwrap(), "1");
    let rescued: u64 = stat(&mut s, "stats", "slab_reassign_rescues")
        .unwrap()
        .parse()
        .unwrap();
    let evicted: u64 = stat(&mut s, "stats", "slab_reassign_evictions_nomem")
        .unwrap()
        .parse()
        .unwrap();
    assert!(rescued + evicted > 0);
    assert_eq!(ask(&mut s, "slabs reassign -1 6"), "OK\r\n");
    assert_eq!(
        ask(&mut s, "slabs reassign -1 7"),
        "BADCLASS invalid src or dst class id\r\n"
    );
    assert_eq!(
        ask(&mut s, "slabs reassign 1 0"),
        "NOSPARE source class has no spare pages\r\n"
    );
    assert_eq!(stat(&mut s, "stats", "slabs_moved").unwrap(), "2");
    // memcached's `stats reset` zeroes the mover's counters
    assert_eq!(ask(&mut s, "stats reset"), "RESET\r\n");
    assert_eq!(stat(&mut s, "stats", "slabs_moved").unwrap(), "0");
    assert_eq!(stat(&mut s, "stats", "slab_reassign_rescues").unwrap(), "0");
}

#[test]
fn lru_crawler_commands_reply_as_memcached_and_really_crawl() {
    let clock = Clock::manual(1_700_000_000);
    let (mut s, _) = session(Config::default().clock(clock.clone()));
    for (line, want) in [
        ("lru_crawler", "ERROR\r\n"),
        ("lru_crawler crawl", "ERROR\r\n"),
        ("lru_crawler crawl 0", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl 64", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl x", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl 1,x", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl ALL", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl ,", "NOTSTARTED no items to crawl\r\n"),
        ("lru_crawler crawl all noreply", "ERROR\r\n"),
        ("lru_crawler crawl 1 2", "ERROR\r\n"),
        ("lru_crawler crawl 63", "OK\r\n"),
        ("lru_crawler crawl 1,", "OK\r\n"),
        ("lru_crawler crawl ,1", "OK\r\n"),
        ("lru_crawler crawl 1,,2", "OK\r\n"),
        ("lru_crawler sleep", "ERROR\r\n"),
        ("lru_crawler sleep 1000000", "OK\r\n"),
        (
            "lru_crawler sleep 1000001",
            "CLIENT_ERROR sleep must be one second or less\r\n",
        ),
        (
            "lru_crawler sleep x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "lru_crawler sleep -1",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("lru_crawler sleep 5 noreply", "ERROR\r\n"),
        ("lru_crawler tocrawl 10", "OK\r\n"),
        (
            "lru_crawler tocrawl x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "lru_crawler tocrawl -1",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "lru_crawler enable",
            "ERROR failed to start lru crawler thread\r\n",
        ),
        ("lru_crawler enable noreply", "ERROR\r\n"),
        ("lru_crawler foo", "ERROR\r\n"),
        ("lru_crawler metadump", "ERROR\r\n"),
        ("lru_crawler metadump 0", "BADCLASS invalid class id\r\n"),
        ("lru_crawler metadump 1,", "END\r\n"),
        ("lru_crawler metadump hash", "END\r\n"),
        ("lru_crawler mgdump all", "ERROR\r\n"),
    ] {
        assert_eq!(ask(&mut s, line), want, "{line}");
    }
    assert_eq!(
        stat(&mut s, "stats settings", "lru_crawler_sleep").unwrap(),
        "1000000"
    );
    assert_eq!(
        stat(&mut s, "stats settings", "lru_crawler_tocrawl").unwrap(),
        "10"
    );
    assert_eq!(ask(&mut s, "lru_crawler tocrawl 4294967296"), "OK\r\n");
    assert_eq!(
        stat(&mut s, "stats settings", "lru_crawler_tocrawl").unwrap(),
        "0"
    );
    let starts: u64 = stat(&mut s, "stats", "lru_crawler_starts")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(starts, 4, "one per crawl requested");

    // a crawl of class 1 reclaims its expired items, not those of class 12
    fill(&mut s, "small", 300, 10, 5);
    fill(&mut s, "big", 300, 1000, 5);
    clock.advance(10);
    assert_eq!(ask(&mut s, "lru_crawler crawl 1"), "OK\r\n");
    assert_eq!(stat(&mut s, "stats", "crawler_reclaimed").unwrap(), "300");
    assert_eq!(
        stat(&mut s, "stats", "crawler_items_checked").unwrap(),
        "300"
    );
    assert_eq!(stat(&mut s, "stats", "curr_items").unwrap(), "300");
    assert_eq!(ask(&mut s, "lru_crawler crawl all"), "OK\r\n");
    assert_eq!(stat(&mut s, "stats", "curr_items").unwrap(), "0");
    assert_eq!(stat(&mut s, "stats", "lru_crawler_running").unwrap(), "0");

    // disabled: crawl and metadump refused, the two crawler stats leave `stats`
    assert_eq!(ask(&mut s, "lru_crawler disable"), "OK\r\n");
    assert_eq!(ask(&mut s, "lru_crawler disable"), "OK\r\n");
    assert_eq!(stat(&mut s, "stats settings", "lru_crawler").unwrap(), "no");
    assert_eq!(stat(&mut s, "stats", "lru_crawler_starts"), None);
    assert_eq!(
        stat(&mut s, "stats", "crawler_items_checked").unwrap(),
        "600"
    );
    assert_eq!(
        ask(&mut s, "lru_crawler crawl all"),
        "CLIENT_ERROR lru crawler disabled\r\n"
    );
    assert_eq!(
        ask(&mut s, "lru_crawler metadump all"),
        "CLIENT_ERROR lru crawler disabled\r\n"
    );
    assert_eq!(ask(&mut s, "lru_crawler enable"), "OK\r\n");
    assert_eq!(
        stat(&mut s, "stats settings", "lru_crawler").unwrap(),
        "yes"
    );
}

#[test]
fn metadump_after_unwritten_replies_of_the_same_read_is_refused() {
    let (mut s, _) = session(Config::default());
    let mut out = Vec::new();
    s.feed(b"set a 0 0 1\r\nx\r\n", &mut out);
    out.clear();
    s.feed(b"version\r\nlru_crawler metadump x\r\n", &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "VERSION 1.6.18\r\nERROR cannot pipeline other commands before metadump\r\n"
    );
    // after a write-out point (`mn`, a get's END) the dump runs
    out.clear();
    s.feed(b"mn\r\nlru_crawler metadump all\r\n", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("MN\r\nkey=a exp=-1 la="), "{text}");
    assert!(text.ends_with(" cls=1 size=61\nEND\r\n"), "{text}");
    out.clear();
    s.feed(b"get b\r\nlru_crawler metadump all\r\n", &mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("END\r\nkey=a "));
}

#[test]
fn an_engine_without_admin_answers_error() {
    let mut s = mock_session();
    let mut out = Vec::new();
    s.feed(
        b"cache_memlimit 64\r\nslabs automove 1\r\nlru_crawler crawl all\r\n",
        &mut out,
    );
    assert_eq!(out, b"ERROR\r\nERROR\r\nERROR\r\n");
}

/// Without memcached's LRU maintainer thread (`-o no_lru_maintainer`, `no_modern`) its
/// `lru mode` and `lru temp_ttl` are no commands: `ERROR` (silent with `noreply`), while
/// `lru tune` still answers `OK` (measured on memcached 1.6.18).
#[test]
fn lru_mode_and_temp_ttl_need_the_maintainer() {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut s = Session::new(store, info.clone());
    let lines = [
        "lru mode flat",
        "lru mode segmented",
        "lru temp_ttl 10",
        "lru temp_ttl x",
        "lru tune 10 20 0.1 1.5",
        "lru mode flat noreply",
        "lru temp_ttl 10 noreply",
    ];
    let replies = |s: &mut Session<Arc<Store>>| lines.map(|l| ask(s, l)).join("");
    assert_eq!(replies(&mut s), "OK\r\nOK\r\nOK\r\nERROR\r\nOK\r\n");
    info.switches
        .lru_maintainer
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        replies(&mut s),
        "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nOK\r\n"
    );
}
