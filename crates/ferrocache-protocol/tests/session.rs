//! Session behaviour beyond single replies: pipelining, split reads, memory bounds,
//! connection control, and the stats family with the real engine.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{feed_chunked, mock_session};
use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ConnEntry, Control, Limits, ServerInfo, Session};

fn engine_session() -> (Session<Arc<Store>>, Arc<ServerInfo>) {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    (Session::new(store, info.clone()), info)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn thousand_pipelined_requests_in_one_read() {
    let (mut s, _) = engine_session();
    let mut input = Vec::new();
    for i in 0..1000 {
        input.extend_from_slice(format!("set key{i} {i} 0 5\r\nv{i:04}\r\n").as_bytes());
        input.extend_from_slice(format!("mg key{i} v f\r\n").as_bytes());
    }
    input.extend_from_slice(b"get key0 key999\r\n");
    let mut out = Vec::new();
    assert_eq!(s.feed(&input, &mut out), Control::Continue);
    assert_eq!(count(&out, b"STORED\r\n"), 1000);
    assert_eq!(count(&out, b"VA 5 f"), 1000);
    assert!(out.ends_with(b"VALUE key0 0 5\r\nv0000\r\nVALUE key999 999 5\r\nv0999\r\nEND\r\n"));
    assert_eq!(s.buffered(), 0);
}

#[test]
fn any_split_of_a_pipeline_gives_the_same_replies() {
    let input = b"set a 0 0 3\r\nabc\r\nappend a 0 0 2\r\nde\r\nget a\r\nms b 2 T0\r\nhi\r\nmg b v\r\nincr n 1\r\nma n N0 J7 v\r\nmn\r\n";
    let (whole, _) = feed_chunked(&mut mock_session(), input, input.len());
    assert!(
        whole.ends_with(b"VA 1\r\n7\r\nMN\r\n"),
        "{}",
        String::from_utf8_lossy(&whole)
    );
    for chunk in 1..input.len() {
        let (out, closed) = feed_chunked(&mut mock_session(), input, chunk);
        assert_eq!(out, whole, "chunk {chunk}");
        assert!(!closed);
    }
}

#[test]
fn huge_declared_value_is_swallowed_without_buffering() {
    let mut s = mock_session();
    let mut out = Vec::new();
    // 100 MB declared: far over the 1 MiB item limit.
    s.feed(b"set big 0 0 100000000\r\n", &mut out);
    // as memcached, the error goes out once the value has been swallowed
    assert_eq!(out, b"");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent + chunk.len() <= 100_000_000 {
        assert_eq!(s.feed(&chunk, &mut out), Control::Continue);
        assert_eq!(s.buffered(), 0);
        sent += chunk.len();
    }
    let mut tail = vec![b'x'; 100_000_000 - sent];
    tail.extend_from_slice(b"\r\nget big\r\n");
    assert_eq!(out, b"");
    s.feed(&tail, &mut out);
    assert_eq!(out, b"SERVER_ERROR object too large for cache\r\nEND\r\n");
}

#[test]
fn binary_oversized_set_is_swallowed_without_buffering() {
    let mut s = mock_session();
    let mut out = Vec::new();
    let vlen: u32 = 10_000_000;
    let mut pkt = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0];
    pkt.extend_from_slice(&(vlen + 9).to_be_bytes());
    pkt.extend_from_slice(&[0; 12]);
    pkt.extend_from_slice(&[0; 8]);
    pkt.push(b'k');
    s.feed(&pkt, &mut out);
    // memcached sends the error once the value has been swallowed
    assert_eq!(out, b"");
    let chunk = vec![0u8; 100_000];
    for _ in 0..100 {
        s.feed(&chunk, &mut out);
        assert_eq!(s.buffered(), 0);
    }
    assert_eq!(&out[6..8], &[0, 3], "E2BIG");
    assert!(out.ends_with(b"Too large."));
    out.clear();
    let noop = [
        0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    s.feed(&noop, &mut out);
    assert_eq!(out.len(), 24);
    assert_eq!(out[1], 0x0a);
}

#[test]
fn a_partial_value_is_buffered_and_bounded_by_the_item_limit() {
    let mut s = mock_session();
    let mut out = Vec::new();
    s.feed(b"set v 0 0 500000\r\n", &mut out);
    s.feed(&vec![b'y'; 300_000], &mut out);
    assert!(out.is_empty());
    assert!(s.buffered() >= 300_000 && s.buffered() < 301_000);
    let mut rest = vec![b'y'; 200_000];
    rest.extend_from_slice(b"\r\n");
    s.feed(&rest, &mut out);
    assert_eq!(out, b"STORED\r\n");
    assert_eq!(s.buffered(), 0);
}

#[test]
fn line_without_newline_past_2048_bytes_closes() {
    let mut s = mock_session();
    let mut out = Vec::new();
    assert_eq!(s.feed(&[b'z'; 2048], &mut out), Control::Continue);
    assert_eq!(s.feed(b"z", &mut out), Control::Close);
    assert!(out.is_empty());
    // Once closed, nothing more is executed.
    assert_eq!(s.feed(b"version\r\n", &mut out), Control::Close);
    assert!(out.is_empty());
}

#[test]
fn long_get_lines_are_allowed_up_to_the_limit() {
    let limits = Limits {
        max_line: 2048,
        max_get_line: 10_000,
        ..Limits::default()
    };
    let mut s = Session::with_limits(
        common::Mock::default(),
        Arc::new(ServerInfo::new("x")),
        limits,
    );
    let mut out = Vec::new();
    let keys: String = (0..1000).map(|i| format!(" k{i}")).collect();
    let line = format!("get{keys}");
    assert!(line.len() > 2048 && line.len() < 10_000);
    assert_eq!(s.feed(line.as_bytes(), &mut out), Control::Continue);
    assert_eq!(s.feed(b"\r\n", &mut out), Control::Continue);
    assert_eq!(out, b"END\r\n");
    assert_eq!(s.feed(&vec![b'k'; 10_001], &mut out), Control::Close);
}

#[test]
fn quit_and_shutdown_control_the_connection() {
    let (mut s, info) = engine_session();
    let mut out = Vec::new();
    assert_eq!(
        s.feed(b"version\r\nquit\r\nversion\r\n", &mut out),
        Control::Close
    );
    assert_eq!(out, b"VERSION 1.6.18\r\n");

    let (mut s, _) = engine_session();
    out.clear();
    assert_eq!(s.feed(b"shutdown\r\n", &mut out), Control::Continue);
    assert_eq!(out, b"ERROR: shutdown not enabled\r\n");

    info.shutdown_enabled.store(true, Ordering::Relaxed);
    let mut s = Session::new(
        Arc::new(Store::new(Config::default().background(false)).unwrap()),
        info.clone(),
    );
    out.clear();
    assert_eq!(s.feed(b"shutdown bogus\r\n", &mut out), Control::Continue);
    assert_eq!(out, b"CLIENT_ERROR invalid shutdown mode\r\n");
    assert_eq!(
        s.feed(b"shutdown graceful\r\n", &mut out),
        Control::Shutdown
    );
}

#[test]
fn protocol_is_chosen_by_the_first_byte() {
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    s.feed(b"mn\r\n", &mut out);
    assert!(!s.is_binary());
    let (mut b, _) = engine_session();
    b.feed(&[0x80, 0x0a], &mut out);
    assert!(b.is_binary());
    assert_eq!(b.buffered(), 2);
}

#[test]
fn verbosity_and_io_counters_reach_server_info() {
    let (mut s, info) = engine_session();
    let mut out = Vec::new();
    s.feed(b"verbosity 5\r\n", &mut out);
    assert_eq!(out, b"OK\r\n");
    assert_eq!(
        info.verbosity.load(Ordering::Relaxed),
        2,
        "capped at memcached's maximum"
    );
    assert_eq!(info.bytes_read(), 13);
    assert_eq!(info.bytes_written(), 4);
}

#[test]
fn bytes_read_counts_the_read_that_asks_for_stats() {
    // memcached counts a read before running it: `stats` sees its own 7 bytes (16 + 7), and the
    // replies written so far but not its own
    let (mut s, _info) = engine_session();
    let mut out = Vec::new();
    s.feed(b"set a 0 0 1\r\nx\r\n", &mut out);
    out.clear();
    s.feed(b"stats\r\n", &mut out);
    let reply = String::from_utf8(out).unwrap();
    assert!(reply.contains("STAT bytes_read 23\r\n"), "{reply}");
    assert!(reply.contains("STAT bytes_written 8\r\n"), "{reply}");
}

fn stat_names(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("STAT "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn recorded_names(kind: &str) -> Vec<String> {
    let line = include_str!("corpus/stats_names.txt")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{kind} ")))
        .unwrap();
    line.split(' ').map(str::to_string).collect()
}

#[test]
fn stats_names_and_order_match_memcached() {
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    s.feed(b"stats\r\n", &mut out);
    assert!(out.ends_with(b"END\r\n"));
    assert_eq!(stat_names(&out), recorded_names("general"));

    out.clear();
    s.feed(b"set a 0 0 1\r\nx\r\nget a\r\n", &mut out);
    out.clear();
    s.feed(b"stats items\r\n", &mut out);
    assert_eq!(
        stat_names(&out),
        recorded_names("items"),
        "{}",
        String::from_utf8_lossy(&out)
    );

    out.clear();
    s.feed(b"stats slabs\r\n", &mut out);
    assert_eq!(stat_names(&out), recorded_names("slabs"));
}

#[test]
fn stats_values_follow_the_engine_and_reset() {
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    s.feed(
        b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\ndelete b\r\nstats\r\n",
        &mut out,
    );
    let text = String::from_utf8_lossy(&out).into_owned();
    for want in [
        "STAT cmd_get 2\r\n",
        "STAT get_hits 1\r\n",
        "STAT get_misses 1\r\n",
        "STAT curr_items 1\r\n",
        "STAT delete_misses 1\r\n",
        "STAT version 1.6.18\r\n",
    ] {
        assert!(text.contains(want), "{want} missing in {text}");
    }
    out.clear();
    s.feed(b"stats reset\r\nstats\r\n", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("RESET\r\n"));
    assert!(
        text.contains("STAT cmd_get 0\r\n") && text.contains("STAT curr_items 1\r\n"),
        "{text}"
    );
}

#[test]
fn stats_settings_and_conns_come_from_server_info() {
    let (mut s, info) = engine_session();
    info.set_settings(vec![
        ("maxbytes".into(), "67108864".into()),
        ("tcpport".into(), "11211".into()),
    ]);
    let entry = ConnEntry {
        addr: "tcp:127.0.0.1:5000".into(),
        listen_addr: "tcp:127.0.0.1:11211".into(),
        opened: 0,
    };
    let last_cmd = info.conn_opened(7, entry);
    // the connection's last command 5 s ago: stats conns counts from it, not from connect
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    last_cmd.store(now - 5, std::sync::atomic::Ordering::Relaxed);
    info.set_listeners(vec![(3, "tcp:127.0.0.1:11211".into())]);
    assert_eq!(info.curr_connections(), 1);
    let mut out = Vec::new();
    s.feed(b"stats settings\r\nstats conns\r\n", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(
        text.starts_with("STAT maxbytes 67108864\r\nSTAT tcpport 11211\r\nEND\r\n"),
        "{text}"
    );
    assert!(
        text.contains("END\r\nSTAT 3:addr tcp:127.0.0.1:11211\r\nSTAT 3:state conn_listening\r\n"),
        "{text}"
    );
    assert!(text.contains("STAT 7:addr tcp:127.0.0.1:5000\r\nSTAT 7:listen_addr tcp:127.0.0.1:11211\r\nSTAT 7:state conn_parse_cmd\r\n"), "{text}");
    // 5, or 6 if the second turned meanwhile (the entry says it opened at 0)
    assert!(
        text.contains("STAT 7:secs_since_last_cmd 5\r\n")
            || text.contains("STAT 7:secs_since_last_cmd 6\r\n"),
        "{text}"
    );
    info.conn_closed(7);
    info.conn_closed(7);
    assert_eq!(info.curr_connections(), 0);
    // the listener counts, as memcached's listening connection does
    assert_eq!(info.total_connections(), 2);
    assert_eq!(info.connection_structures(), 2);
    info.conn_rejected();
    assert_eq!(info.rejected_connections(), 1);
    // memcached closes a refused connection before it becomes one
    assert_eq!(info.total_connections(), 2);
}

#[test]
fn listeners_count_as_memcached_counts_them() {
    let (mut s, info) = engine_session();
    let entry = |port: u16| ConnEntry {
        addr: format!("tcp:127.0.0.1:{port}"),
        listen_addr: "tcp:127.0.0.1:11211".into(),
        opened: 0,
    };
    info.set_listeners(vec![
        (0, "tcp:127.0.0.1:11211".into()),
        (1, "tcp:127.0.0.2:11211".into()),
    ]);
    info.conn_opened(1, entry(5000));
    info.conn_opened(2, entry(5001));
    info.conn_closed(2);
    // every connection and listener less one; listeners plus the most open at once
    assert_eq!(info.curr_connections(), 2);
    assert_eq!(info.total_connections(), 4);
    assert_eq!(info.connection_structures(), 4);
    let mut out = Vec::new();
    s.feed(b"stats conns\r\n", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    // the listeners keep 0 and 1; connection 1 is listed past them
    assert!(
        text.starts_with("STAT 0:addr tcp:127.0.0.1:11211\r\nSTAT 0:state conn_listening\r\n"),
        "{text}"
    );
    assert!(
        text.contains("STAT 1:addr tcp:127.0.0.2:11211\r\nSTAT 1:state conn_listening\r\n"),
        "{text}"
    );
    assert!(
        text.contains("STAT 2:addr tcp:127.0.0.1:5000\r\n"),
        "{text}"
    );
    s.feed(b"stats reset\r\n", &mut out);
    assert_eq!(info.total_connections(), 0);
    assert_eq!(info.connection_structures(), 4);
}

#[test]
fn binary_stat_sends_one_packet_per_stat_then_an_empty_one() {
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    let pkt = [
        0x80, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    s.feed(&pkt, &mut out);
    let mut names = Vec::new();
    let mut p = &out[..];
    loop {
        assert_eq!(p[0], 0x81);
        assert_eq!(&p[12..16], &[1, 2, 3, 4], "opaque echoed");
        let klen = u16::from_be_bytes([p[2], p[3]]) as usize;
        let blen = u32::from_be_bytes([p[8], p[9], p[10], p[11]]) as usize;
        if blen == 0 {
            assert_eq!(p.len(), 24);
            break;
        }
        names.push(String::from_utf8(p[24..24 + klen].to_vec()).unwrap());
        p = &p[24 + blen..];
    }
    assert_eq!(names, recorded_names("general"));
}

#[test]
fn cachedump_and_metadump_list_live_items() {
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    s.feed(
        b"set a/b 0 0 1\r\nx\r\nset c 5 0 2\r\nxy\r\nget a/b\r\n",
        &mut out,
    );
    out.clear();
    s.feed(
        b"stats cachedump 1 0\r\nstats cachedump 1 1\r\nstats cachedump 2 0\r\n",
        &mut out,
    );
    let text = String::from_utf8_lossy(&out).into_owned();
    let first: Vec<&str> = text.split("END\r\n").collect();
    assert_eq!(first.len(), 4, "{text}");
    assert!(
        first[0].contains("ITEM a/b [1 b; 0 s]\r\n") && first[0].contains("ITEM c [2 b; 0 s]\r\n"),
        "{text}"
    );
    assert_eq!(first[1].matches("ITEM ").count(), 1, "limit 1");
    assert_eq!(first[2], "", "class 2 is empty");

    out.clear();
    // one read each: memcached refuses a metadump behind unwritten replies of the same read
    for line in [
        &b"lru_crawler metadump all\r\n"[..],
        b"lru_crawler metadump 1,2\r\n",
        b"lru_crawler metadump 99\r\n",
    ] {
        let mut one = Vec::new();
        s.feed(line, &mut one);
        out.extend_from_slice(&one);
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let parts: Vec<&str> = text.split("END\r\n").collect();
    assert!(parts[0].contains("key=a%2Fb exp=-1 la="), "{text}");
    assert!(parts[0].contains(" fetch=yes cls=1 size=63\n"), "{text}");
    assert!(
        parts[0].contains("key=c exp=-1 ") && parts[0].contains(" fetch=no cls=1 size=66\n"),
        "{text}"
    );
    assert_eq!(parts[0], parts[1]);
    assert_eq!(parts[2], "BADCLASS invalid class id\r\n");
}

#[test]
fn out_of_memory_without_eviction_is_reported_in_both_protocols() {
    let config = Config::default()
        .background(false)
        .evict(false)
        .memory_limit(2 << 20);
    let store = Arc::new(Store::new(config).unwrap());
    let info = Arc::new(ServerInfo::new("1.6.18"));
    let mut text = Session::new(store.clone(), info.clone());
    let mut out = Vec::new();
    let value = vec![b'v'; 100_000];
    let mut oom_at = None;
    for i in 0..100 {
        out.clear();
        let mut req = format!("set k{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        text.feed(&req, &mut out);
        if out != b"STORED\r\n" {
            assert_eq!(out, b"SERVER_ERROR out of memory storing object\r\n");
            oom_at = Some(i);
            break;
        }
    }
    assert!(oom_at.is_some(), "2 MiB of memory never filled up");

    let mut bin = Session::new(store, info);
    out.clear();
    let vlen = value.len() as u32;
    let mut pkt = vec![0x80, 0x01, 0, 2, 8, 0, 0, 0];
    pkt.extend_from_slice(&(vlen + 10).to_be_bytes());
    pkt.extend_from_slice(&[0; 20]);
    pkt.extend_from_slice(b"zz");
    pkt.extend_from_slice(&value);
    bin.feed(&pkt, &mut out);
    assert_eq!(&out[6..8], &[0, 0x82], "ENOMEM");
    assert!(out.ends_with(b"Out of memory allocating item"));
}

/// A store refused for memory drops the key's old value as memcached 1.6.18 does: a text
/// `set` (not `cas`, whose `process_update_command` unlinks only for `NREAD_SET`), and an
/// `ms` in every mode and with `C` (`process_mset_command` unlinks whatever the mode).
/// Measured beside memcached `-m 2 -M`, full of 100-byte values: `cas k <bad>` left `k`,
/// `ms k 100 MR`, `ME`, `C…` removed it (the diff helper's campaign, session 18).
#[test]
fn out_of_memory_drops_the_old_value_as_memcached_does() {
    let config = Config::default()
        .background(false)
        .evict(false)
        .memory_limit(2 << 20);
    let store = Arc::new(Store::new(config).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let value = "v".repeat(100);
    let mut out = Vec::new();
    let mut next = 0;
    // fills the 100-byte class until a set is refused (a removal frees a chunk)
    let mut fill = |s: &mut Session<Arc<Store>>| {
        let mut out = Vec::new();
        for _ in 0..100_000 {
            out.clear();
            next += 1;
            s.feed(
                format!("set f{next} 0 0 100\r\n{value}\r\n").as_bytes(),
                &mut out,
            );
            if out != b"STORED\r\n" {
                assert_eq!(out, b"SERVER_ERROR out of memory storing object\r\n");
                return;
            }
        }
        panic!("2 MiB never filled up");
    };
    fill(&mut s);
    // the old values to refuse stores to (made room for by the refused fill's removal)
    s.feed(
        b"delete f1\r\ndelete f2\r\ndelete f3\r\ndelete f4\r\n",
        &mut out,
    );
    for k in ["k1", "k2", "k3", "k4"] {
        out.clear();
        s.feed(
            format!("set {k} 0 0 100\r\n{value}\r\n").as_bytes(),
            &mut out,
        );
        assert_eq!(out, b"STORED\r\n", "{k}");
    }
    let oom = b"SERVER_ERROR out of memory storing object\r\n";
    for (request, kept) in [
        (
            format!("cas k1 0 0 100 999999\r\n{value}\r\nmg k1\r\n"),
            true,
        ),
        (format!("ms k2 100 MR\r\n{value}\r\nmg k2\r\n"), false),
        (format!("ms k3 100 ME\r\n{value}\r\nmg k3\r\n"), false),
        (format!("ms k4 100 C999999\r\n{value}\r\nmg k4\r\n"), false),
    ] {
        fill(&mut s);
        out.clear();
        s.feed(request.as_bytes(), &mut out);
        let mut want = oom.to_vec();
        want.extend_from_slice(if kept { b"HD\r\n" } else { b"EN\r\n" });
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "{request:.12}"
        );
    }
}

#[test]
fn stats_pairs_are_the_stats_reply_without_counting_it() {
    let (mut s, info) = engine_session();
    info.set_settings(vec![("maxconns".into(), "1024".into())]);
    let mut out = Vec::new();
    s.feed(b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\n", &mut out);
    let read = info.bytes_read();
    for family in ["", "settings", "items", "slabs"] {
        let pairs = s.stats_pairs(family).unwrap();
        assert!(!pairs.is_empty(), "stats {family}");
        out.clear();
        let cmd = if family.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {family}\r\n")
        };
        s.feed(cmd.as_bytes(), &mut out);
        let reply = String::from_utf8(out.clone()).unwrap();
        // every pair is a line of the reply (uptime/time/rusage may tick between the two)
        for (name, value) in &pairs {
            if [
                "uptime",
                "time",
                "rusage_user",
                "rusage_system",
                "bytes_read",
                "bytes_written",
            ]
            .contains(&name.as_str())
            {
                assert!(reply.contains(&format!("STAT {name} ")), "{name}");
            } else {
                assert!(
                    reply.contains(&format!("STAT {name} {value}\r\n")),
                    "{name} {value} in {reply}"
                );
            }
        }
        assert_eq!(
            reply.matches("STAT ").count(),
            pairs.len(),
            "stats {family}"
        );
    }
    let general: std::collections::HashMap<_, _> = s.stats_pairs("").unwrap().into_iter().collect();
    assert_eq!(general["get_hits"], "1");
    assert_eq!(general["get_misses"], "1");
    assert!(s.stats_pairs("nonsense").is_none());
    // reading the pairs is not a request: only the fed `stats` commands were counted
    let before = info.bytes_read();
    s.stats_pairs("").unwrap();
    assert_eq!(info.bytes_read(), before);
    assert!(before > read);
}

/// A multiget with a key over 250 bytes culls every reply memcached had not written out
/// yet: those of the requests since its last write-out point (a get, `mn`) in the same
/// read; replies of earlier feeds are sent already.
#[test]
fn overlong_multiget_key_culls_the_unsent_replies_of_its_read() {
    let long = "k".repeat(251);
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    let input = format!(
        "set a 0 0 1\r\nx\r\nmn\r\nset b 0 0 1\r\ny\r\ndelete zz\r\ngets b {long}\r\nget a\r\n"
    );
    s.feed(input.as_bytes(), &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "STORED\r\nMN\r\nCLIENT_ERROR bad command line format\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
    );
    // a caller passing `out` back undrained continues the read: TOUCHED is unsent too
    out.clear();
    s.feed(b"touch a 0\r\n", &mut out);
    s.feed(format!("get a {long}\r\n").as_bytes(), &mut out);
    assert_eq!(out, b"CLIENT_ERROR bad command line format\r\n");
    // a drained `out` means the earlier replies were written
    let mut first = Vec::new();
    s.feed(b"touch a 0\r\n", &mut first);
    let mut second = Vec::new();
    s.feed(format!("get a {long}\r\n").as_bytes(), &mut second);
    assert_eq!(first, b"TOUCHED\r\n");
    assert_eq!(second, b"CLIENT_ERROR bad command line format\r\n");
}

/// The value of `STAT name` in a reply.
fn stat_of(reply: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(reply);
    let prefix = format!("STAT {name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// memcached 1.6.18 counts only `me` in cmd_meta (mg/ms/md/ma/mn leave it), and `stats
/// settings` shows the verbosity the `verbosity` command set (measured against it).
#[test]
fn cmd_meta_counts_me_and_settings_show_the_live_verbosity() {
    let (mut s, info) = engine_session();
    info.set_settings(vec![
        ("verbosity".into(), "0".into()),
        ("hash_algorithm".into(), "ahash".into()),
    ]);
    let mut out = Vec::new();
    s.feed(b"ms k 1\r\nx\r\nmg k v\r\nmg zz v\r\nma zz\r\nmd k\r\nmn\r\nme k\r\nme zz\r\nverbosity 5\r\n", &mut out);
    out.clear();
    s.feed(b"stats\r\nstats settings\r\n", &mut out);
    assert_eq!(stat_of(&out, "cmd_meta"), "2");
    assert_eq!(stat_of(&out, "verbosity"), "2"); // memcached caps it at 2
    assert_eq!(stat_of(&out, "hash_algorithm"), "ahash");
}

/// `stats settings` `oldest` is memcached's flush mark (`settings.oldest_live`) on its clock,
/// which starts 62 s before the process: after `flush_all` the second before now, after a
/// delay the second before the deadline, the mark itself with `-C`, 0 for a unix time up to
/// that clock's start; the binary flush too (libmemcached's `memcstat settings` showed 0).
#[test]
fn settings_oldest_is_memcacheds_flush_mark() {
    let (mut s, info) = engine_session();
    info.set_settings(vec![("oldest".into(), "0".into())]);
    let shown = |s: &mut Session<Arc<Store>>| -> i64 {
        let mut out = Vec::new();
        s.feed(b"stats settings\r\n", &mut out);
        stat_of(&out, "oldest").parse().unwrap()
    };
    // the mark as seconds from now (either side of a clock tick passes)
    let from_now = |mark: i64| mark - (now_secs() - info.started as i64 + 62);
    assert_eq!(shown(&mut s), 0);
    let mut out = Vec::new();
    s.feed(b"flush_all\r\n", &mut out);
    assert!([-1, -2].contains(&from_now(shown(&mut s))), "flush_all");
    s.feed(b"flush_all 100\r\n", &mut out);
    assert!([99, 98].contains(&from_now(shown(&mut s))), "flush_all 100");
    s.feed(b"flush_all 2592001 noreply\r\n", &mut out);
    assert_eq!(shown(&mut s), 0);
    assert_eq!(count(&out, b"OK\r\n"), 2);
    info.switches.cas.store(false, Ordering::Relaxed);
    s.feed(b"flush_all -1\r\n", &mut out); // a negative delay is none
    assert!(
        [0, -1].contains(&from_now(shown(&mut s))),
        "flush_all -1 with -C"
    );
    // binary flush (a connection of its own: the first byte picks the protocol), delay 10
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut bin = Session::new(store, info.clone());
    let mut req = vec![0x80, 0x08, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4];
    req.extend_from_slice(&[0; 12]);
    req.extend_from_slice(&10u32.to_be_bytes());
    let mut bin_out = Vec::new();
    bin.feed(&req, &mut bin_out);
    assert_eq!(&bin_out[..2], &[0x81, 0x08]);
    assert!(
        [10, 9].contains(&from_now(shown(&mut s))),
        "binary flush 10 with -C"
    );
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A set refused as too large drops the key's old value without counting a delete, as
/// memcached unlinks it (text, meta and binary alike).
#[test]
fn refused_too_large_set_drops_the_old_value_without_counting_a_delete() {
    let (mut s, _) = engine_session();
    let mut out = Vec::new();
    let big = "y".repeat(1_048_577);
    let input = format!(
        "set a 0 0 1\r\nx\r\nset a 0 0 {n}\r\n{big}\r\nset b 0 0 1\r\nx\r\nms b {n}\r\n{big}\r\nset c 0 0 {n}\r\n{big}\r\nget a b\r\nstats\r\n",
        n = big.len()
    );
    s.feed(input.as_bytes(), &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("SERVER_ERROR object too large for cache\r\nEND\r\n"),
        "{text}"
    );
    assert_eq!(stat_of(&out, "delete_hits"), "0");
    assert_eq!(stat_of(&out, "delete_misses"), "0");
    assert_eq!(stat_of(&out, "curr_items"), "0");
}

#[test]
fn stats_conns_shows_a_unix_socket_as_memcached() {
    // memcached 1.6.18 -s <65-byte path> (measured): the listener's `unix:<path>` cut to
    // 31 bytes, a client's address `?:<AF 0>`, its listen_addr whole
    let (mut s, info) = engine_session();
    let path = "unix:/tmp/ag2/a-very-long-socket-path-name-for-testing-0123456789.sock";
    info.set_listeners(vec![(0, path.into())]);
    let entry = ConnEntry {
        addr: path.into(),
        listen_addr: path.into(),
        opened: 0,
    };
    info.conn_opened(1, entry);
    let mut out = Vec::new();
    s.feed(b"stats conns\r\n", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(
        text.starts_with("STAT 0:addr unix:/tmp/ag2/a-very-long-socke\r\n"),
        "{text}"
    );
    let client = format!("STAT 1:addr ?:<AF 0>\r\nSTAT 1:listen_addr {path}\r\n");
    assert!(text.contains(&client), "{text}");
}
