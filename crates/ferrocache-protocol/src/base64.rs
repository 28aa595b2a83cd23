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

/// Decodes padded base64 into `out`; `None` (memcached's "error decoding key") if the
/// input is not valid, empty, or decodes to nothing.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    if input.is_empty() || !input.len().is_multiple_of(4) {
        return None;
    }
    let quads = input.len() / 4;
    for (qi, q) in input.chunks_exact(4).enumerate() {
        let last = qi + 1 == quads;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | dec(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
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
        assert!(decode(b"YW=j", &mut d).is_none());
        assert!(decode(b"Y!Jj", &mut d).is_none());
    }
}
