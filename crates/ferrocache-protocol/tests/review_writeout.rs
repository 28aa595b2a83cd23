//! Write-out points found by a review against memcached 1.6.18: a get writes its replies
//! out only once it has answered `END`; a get refused (bad `gat` exptime, a key over 250
//! bytes) is no write-out point, so a later overlong key culls its error and what came
//! before it in the same read, as memcached does (measured: it answers only the last
//! `CLIENT_ERROR bad command line format`).

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn replies(input: &str) -> String {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.feed(input.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_gat_with_a_bad_exptime_is_no_write_out_point() {
    let long = "x".repeat(251);
    for cmd in ["gat", "gats"] {
        assert_eq!(
            replies(&format!("delete k1\r\n{cmd} x k1\r\nget {long}\r\n")),
            "CLIENT_ERROR bad command line format\r\n",
            "{cmd}"
        );
    }
}

#[test]
fn a_get_refused_for_a_long_key_is_no_write_out_point() {
    let long = "x".repeat(251);
    assert_eq!(
        replies(&format!("delete k1\r\nget {long}\r\nget {long}\r\n")),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn a_get_that_answers_end_still_is_one() {
    let long = "x".repeat(251);
    assert_eq!(
        replies(&format!("delete k1\r\ngat 10\r\nget {long}\r\n")),
        "NOT_FOUND\r\nEND\r\nCLIENT_ERROR bad command line format\r\n"
    );
}
