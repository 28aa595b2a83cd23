//! meta `R` before `T`: memcached 1.6.18 judges the recache on the expiry the item had, in
//! token order (found by the randomized differential test, seed 6537).

mod common;

use common::engine_replies as replies;

/// An item expiring in 1000 s, `R50000` then `T0`: memcached hands out the win token even
/// though `T0` then makes the item never expire (measured: `HD Oop123 W`); the next `mg`
/// sees it taken (`Z`). Was: `HD Oop123` (judged after `T0`).
#[test]
fn r_before_t0_wins_on_the_old_expiry() {
    assert_eq!(
        replies(b"ma d N1000 v\r\nmg d R50000 T0 Oop123\r\nmg d\r\nmn\r\n"),
        "VA 1\r\n0\r\nHD Oop123 W\r\nHD Z\r\nMN\r\n"
    );
}

/// Not due before the `T` (never expiring): no token, whatever `T` sets.
#[test]
fn r_before_t_on_a_never_expiring_item_does_not_win() {
    assert_eq!(
        replies(b"set d 0 0 1\r\nx\r\nmg d R50000 T10\r\nmn\r\n"),
        "STORED\r\nHD\r\nMN\r\n"
    );
}
