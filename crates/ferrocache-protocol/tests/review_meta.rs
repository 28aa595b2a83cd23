//! Meta details measured against memcached 1.6.18 in review.

mod common;

use common::engine_replies as replies;

/// `q` hides an `ma` success only when the item was there: memcached answers one that `N`
/// created (measured: `HD`, `VA 1\r\n0`, `VA 1 t5\r\n3`), and hides the next one.
#[test]
fn a_quiet_ma_that_vivifies_answers() {
    assert_eq!(
        replies(b"ma a N5 q\r\nma a N5 q\r\nma b N0 q v\r\nma c q\r\nma d N5 J3 q v t\r\nmn\r\n"),
        "HD\r\nVA 1\r\n0\r\nNF\r\nVA 1 t5\r\n3\r\nMN\r\n"
    );
}
