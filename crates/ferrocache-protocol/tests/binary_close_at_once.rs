//! A binary request refused with an error and a close (`0x0004 Invalid arguments` for an
//! empty or overlong key) asks to close at once, with no linger (memcached 1.6.18 closes
//! right after the reply); `quit` and text closes do not.

use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

/// A binary add of `key` with flags/exptime extras and a one-byte value.
fn add(key: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x02];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[8, 0, 0, 0]);
    p.extend_from_slice(&(8 + key.len() as u32 + 1).to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(key);
    p.push(b'v');
    p
}

fn session() -> Session<Arc<Store>> {
    let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
    Session::new(store, Arc::new(ServerInfo::new("1.6.18")))
}

#[test]
fn a_refused_key_closes_at_once() {
    for key in [&b""[..], &[b'k'; 251][..]] {
        let mut s = session();
        let mut out = Vec::new();
        // a good request first: only the refused one decides
        assert_eq!(s.feed(&add(b"ok"), &mut out), Control::Continue);
        assert!(!s.closes_at_once());
        assert_eq!(s.feed(&add(key), &mut out), Control::Close);
        assert_eq!(
            u16::from_be_bytes([out[30], out[31]]),
            0x0004,
            "key length {}",
            key.len()
        );
        assert!(s.closes_at_once(), "key length {}", key.len());
    }
}

#[test]
fn quit_and_text_closes_linger() {
    let mut quit = vec![0x80, 0x07];
    quit.extend_from_slice(&[0; 22]);
    for input in [quit, b"get a\r\nquit\r\n".to_vec(), vec![b'a'; 3000]] {
        let mut s = session();
        let mut out = Vec::new();
        assert_eq!(s.feed(&input, &mut out), Control::Close);
        assert!(!s.closes_at_once());
    }
}
