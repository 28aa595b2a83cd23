//! Differences from memcached 1.6.18 found by the randomized differential test
//! (`__test__/differential-random.test.ts`), each checked by hand against memcached.

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{ServerInfo, Session};

fn replies(input: &[u8]) -> String {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
    let mut out = Vec::new();
    s.feed(input, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Mode letters are upper case (or `+`/`-` for `ma`): memcached refuses `Ms`, `Me`, `Ma`,
/// `Mp`, `Mr` on `ms` (the value is swallowed) and `Mi`, `Md` on `ma`.
#[test]
fn lower_case_modes_are_invalid() {
    let invalid_ms = "CLIENT_ERROR invalid mode for ms M token\r\n";
    for mode in ["s", "e", "a", "p", "r"] {
        let input = format!("ms k 1 M{mode}\r\nx\r\nmn\r\n");
        assert_eq!(
            replies(input.as_bytes()),
            format!("{invalid_ms}MN\r\n"),
            "ms M{mode}"
        );
    }
    let invalid_ma = "CLIENT_ERROR invalid mode for ma M token\r\n";
    for mode in ["i", "d"] {
        let input = format!("set n 0 0 1\r\n5\r\nma n M{mode} v\r\n");
        assert_eq!(
            replies(input.as_bytes()),
            format!("STORED\r\n{invalid_ma}"),
            "ma M{mode}"
        );
    }
    assert_eq!(
        replies(b"set n 0 0 1\r\n5\r\nma n M+ v\r\nma n M- v\r\nma n MI v\r\nma n MD v\r\n"),
        "STORED\r\nVA 1\r\n6\r\nVA 1\r\n5\r\nVA 1\r\n6\r\nVA 1\r\n5\r\n"
    );
}
