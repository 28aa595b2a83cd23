//! memcached's number parsing (`safe_strtoul`, `safe_strtol`, `safe_strtoull` in util.c),
//! reproduced with its quirks: leading whitespace and `+` allowed, trailing whitespace
//! allowed, `-` rejected only when the result wraps, 32-bit results truncated.

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// strtoull/strtol's scan: (negative, magnitude, overflowed, rest) or None without digits.
fn scan(s: &[u8]) -> Option<(bool, u64, bool, &[u8])> {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    let mut over = false;
    while i < s.len() && s[i].is_ascii_digit() {
        match v
            .checked_mul(10)
            .and_then(|x| x.checked_add((s[i] - b'0') as u64))
        {
            Some(x) => v = x,
            None => over = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((neg, v, over, &s[i..]))
}

fn ends_ok(rest: &[u8]) -> bool {
    rest.is_empty() || is_space(rest[0])
}

/// `safe_strtoull`: unsigned 64-bit.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let (neg, v, over, rest) = scan(s)?;
    if over || !ends_ok(rest) {
        return None;
    }
    let v = if neg { v.wrapping_neg() } else { v };
    if (v as i64) < 0 && neg {
        return None;
    }
    Some(v)
}

/// `safe_strtoul` into a 32-bit slot: the 64-bit result truncated, as memcached does.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).map(|v| v as u32)
}

/// `safe_strtol` into a 32-bit slot: a 64-bit `strtol`, then truncated.
pub fn parse_i32(s: &[u8]) -> Option<i32> {
    let (neg, v, over, rest) = scan(s)?;
    if !ends_ok(rest) {
        return None;
    }
    let limit = if neg { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if over || v > limit {
        return None; // ERANGE
    }
    let l = if neg {
        (v as i64).wrapping_neg()
    } else {
        v as i64
    };
    Some(l as i32)
}

/// Appends the decimal form of `v`.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_follows_strtoull() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"007"), Some(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"-0"), Some(0));
        // wraps to a small positive number, which memcached lets through
        assert_eq!(parse_u64(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_u64(b"1x"), None);
        assert_eq!(parse_u64(b"1\t"), Some(1));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"x"), None);
    }

    #[test]
    fn thirty_two_bit_slots_truncate() {
        assert_eq!(parse_u32(b"4294967296"), Some(0));
        assert_eq!(parse_u32(b"18446744073709551615"), Some(u32::MAX));
        assert_eq!(parse_i32(b"2147483648"), Some(i32::MIN));
        assert_eq!(parse_i32(b"-2147483649"), Some(i32::MAX));
        assert_eq!(parse_i32(b"-5"), Some(-5));
        assert_eq!(parse_i32(b"9223372036854775808"), None);
        assert_eq!(parse_i32(b"-9223372036854775808"), Some(0));
    }
}
