//! Standard base64 (with padding) for meta's binary keys (`b` flag).

const ENC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn dec(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes base64 into `out` as memcached 1.6.18's `base64_decode` does; `None`
/// (memcached's "error decoding key") when it returns nothing. Bytes outside the alphabet
/// are skipped; the rest must make whole groups of four; `=` reads as 0 and, after the
/// group it is in, ends the input (one drops a byte, two drop two, more are refused).
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    let value = |c: u8| if c == b'=' { Some(0) } else { dec(c) };
    let count = input.iter().filter(|&&c| value(c).is_some()).count();
    if count == 0 || !count.is_multiple_of(4) {
        return None;
    }
    let (mut n, mut filled, mut pad) = (0u32, 0, 0);
    for &c in input {
        let Some(v) = value(c) else { continue };
        pad += usize::from(c == b'=');
        n = (n << 6) | v;
        filled += 1;
        if filled == 4 {
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
            (n, filled) = (0, 0);
            if pad > 0 {
                if pad > 2 {
                    return None;
                }
                out.truncate(out.len() - pad);
                break;
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(())
    }
}

/// Appends the padded base64 form of `input`.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(ENC[(n >> 18) as usize & 63]);
        out.push(ENC[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            ENC[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            ENC[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut d = Vec::new();
        for s in [&b"a"[..], b"ab", b"abc", b"\x00\xff\x10zz"] {
            let mut e = Vec::new();
            encode(s, &mut e);
            decode(&e, &mut d).unwrap();
            assert_eq!(d, s);
        }
        assert!(decode(b"YWJj", &mut d).is_some());
        assert_eq!(d, b"abc");
        assert!(decode(b"a", &mut d).is_none());
        assert!(decode(b"zz", &mut d).is_none());
        assert!(decode(b"Y!Jj", &mut d).is_none());
        assert!(decode(b"A===", &mut d).is_none());
    }

    /// memcached 1.6.18 skips bytes outside the alphabet and stops after a padded group
    /// (measured: `me r10:c b` is `EN`, `me r1:c b` an error).
    #[test]
    fn skips_what_memcached_skips() {
        let mut d = Vec::new();
        assert!(decode(b"r10:c", &mut d).is_some());
        assert_eq!(d, [0xaf, 0x5d, 0x1c]);
        assert!(decode(b"r1:c", &mut d).is_none());
        assert!(decode(b"YWI=YWJj", &mut d).is_some());
        assert_eq!(d, b"ab");
        assert!(decode(b"YW=j", &mut d).is_some());
        assert_eq!(d, b"a`");
    }
}
