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

/// `R`'s token is an exptime as memcached's `realtime()` reads it, compared with the item's
/// expiry (`it->exptime < realtime(R)`): `R0` is 0 and a negative `R` is relative time 1,
/// below every expiry, so neither wins, not even on an item a `T-1` has just expired
/// (measured: `mg k T-1 R0` is `HD`, `R1` `HD W`). Was `HD W` (0 seconds left is below 0).
/// Found by the session-14 differential campaign (meta streams, seed 139).
#[test]
fn r0_and_a_negative_r_never_win() {
    for r in ["R0", "R-5"] {
        let req = format!("ms k 1 T1000\r\nx\r\nmg k T-1 {r}\r\nmg k {r}\r\nmn\r\n");
        assert_eq!(replies(req.as_bytes()), "HD\r\nHD\r\nEN\r\nMN\r\n", "{r}");
    }
    assert_eq!(
        replies(b"ms k 1 T1000\r\nx\r\nmg k T-1 R1\r\nmn\r\n"),
        "HD\r\nHD W\r\nMN\r\n"
    );
}

/// An `R` over 30 days is a unix time, as `T`'s: an item expiring in 1000 s is not due
/// before a time 500 s from now, nor before one in 1970 (`R2592001`: relative time 1), and
/// is before one 2000 s from now (measured on memcached 1.6.18; was: read as seconds from
/// now, so all three won).
#[test]
fn an_r_over_30_days_is_a_unix_time() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (r, won) in [(now + 500, false), (2_592_001, false), (now + 2000, true)] {
        let req = format!("ms k 1 T1000\r\nx\r\nmg k R{r}\r\nmn\r\n");
        let want = if won {
            "HD\r\nHD W\r\nMN\r\n"
        } else {
            "HD\r\nHD\r\nMN\r\n"
        };
        assert_eq!(replies(req.as_bytes()), want, "R{r}");
    }
    // a unix time already past (after the start): only an item just expired is before it
    let req = format!(
        "ms k 1 T1000\r\nx\r\nmg k R{}\r\nmg k T-1 R{}\r\nmn\r\n",
        now - 1,
        now - 1
    );
    assert_eq!(replies(req.as_bytes()), "HD\r\nHD\r\nHD W\r\nMN\r\n");
}
