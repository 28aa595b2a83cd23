//! Authentication, as memcached 1.6.18 does it, from one user file:
//!
//! - [`Users`]: memcached's `-Y` file, one `username:password` per line.
//! - The text protocol's token login ([`text_step`]): until it succeeds, every request
//!   gets `CLIENT_ERROR unauthenticated`, except `set <any> <flags> <exptime> <len>` whose
//!   data is `user pass` (`STORED` on success, `CLIENT_ERROR authentication failure`
//!   otherwise). Meta commands are text requests, so they wait for it too.
//! - SASL PLAIN over the binary protocol ([`sasl`]): `SASL_LIST_MECHS`, `SASL_AUTH`,
//!   `SASL_STEP`; until it succeeds every other opcode but `VERSION` gets status 0x20
//!   `Auth failure.` and the connection is closed (the gate is in `binary.rs`).
//!
//! Passwords are compared in constant time: every entry is compared in full, whatever
//! matched before (only the lengths of the candidate and the stored values show).

use std::hint::black_box;

use memchr::memchr;

use crate::num::parse_u64;
use crate::session::{Session, Step};
use crate::storage::Storage;
use crate::text::{reply, Tokens};

/// Largest `user pass` payload waited for (memcached's 16 KiB read buffer): past it the
/// connection is closed, so a login line announcing 4 GB cannot grow the buffer.
pub(crate) const MAX_TOKEN: usize = 16 * 1024;
/// memcached's `MAX_SASL_MECH_LEN`.
pub(crate) const MAX_MECH: usize = 32;
/// The one mechanism offered.
pub(crate) const MECHS: &[u8] = b"PLAIN";

/// The users of a `-Y`/`--auth-file` file: `username:password` per line (the password is
/// everything after the first `:` up to the line end; a `\r` before the `\n` is not part
/// of it). Blank lines are skipped; a line without `:` is an error.
///
/// ```
/// use ferrocache_protocol::Users;
/// let users = Users::parse(b"alice:s3cret\nbob:pw:with:colons\n").unwrap();
/// assert!(users.check(b"alice", b"s3cret"));
/// assert!(users.check(b"bob", b"pw:with:colons"));
/// assert!(!users.check(b"alice", b"wrong"));
/// assert!(Users::parse(b"no colon here\n").is_err());
/// ```
#[derive(Clone)]
pub struct Users {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Users {
    // Never prints a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} entries)", self.entries.len())
    }
}

impl Users {
    /// Parses a user file's bytes; `Err` names the first malformed line.
    pub fn parse(text: &[u8]) -> Result<Users, String> {
        let mut entries = Vec::new();
        for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let Some(colon) = memchr(b':', line) else {
                return Err(format!("line {} is not username:password", n + 1));
            };
            entries.push((line[..colon].to_vec(), line[colon + 1..].to_vec()));
        }
        if entries.is_empty() {
            return Err("no username:password line".to_string());
        }
        Ok(Users { entries })
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never true for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `user` with `pass` is in the file. Every entry is compared, each in
    /// constant time for its length.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        let mut found = 0u8;
        for (u, p) in &self.entries {
            found |= ct_eq(user, u) & ct_eq(pass, p);
        }
        found == 1
    }
}

/// 1 if equal, else 0, without a data-dependent branch or early exit.
fn ct_eq(a: &[u8], b: &[u8]) -> u8 {
    let n = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= black_box((x ^ y) as u64);
    }
    // 1 when diff == 0: (diff | -diff) has the top bit set for any non-zero diff.
    let nonzero = (diff | diff.wrapping_neg()) >> 63;
    black_box((1 - nonzero) as u8)
}

/// A text request on a connection that has not logged in yet (memcached's
/// `try_read_command_asciiauth`).
pub(crate) fn text_step<S: Storage>(s: &mut Session<S>, data: &[u8], out: &mut Vec<u8>) -> Step {
    let Some(nl) = memchr(b'\n', data) else {
        // No multiget exception here: junk past the line limit is hung up on.
        return if data.len() > s.limits.max_line {
            Step::Abort
        } else {
            Step::More
        };
    };
    let line_end = nl + 1;
    // memcached leaves the '\r' in (number parsing stops at it) and stops at a NUL.
    let mut line = &data[..nl];
    if let Some(z) = memchr(0, line) {
        line = &line[..z];
    }
    let t = Tokens::new(line);
    let len = match parse_u64(t.get(4)) {
        Some(n) if t.count() >= 6 && t.get(0) == b"set" && n <= u32::MAX as u64 => n as usize,
        _ => {
            reply(out, false, b"CLIENT_ERROR unauthenticated");
            return Step::Done(line_end);
        }
    };
    let end = line_end + len + 2;
    if data.len() < end {
        return if data.len() - line_end > MAX_TOKEN {
            Step::Abort
        } else {
            Step::More
        };
    }
    if &data[end - 2..end] != b"\r\n" {
        reply(out, false, b"CLIENT_ERROR bad command line termination");
        return Step::Done(end);
    }
    let mut token = &data[line_end..end - 2];
    if let Some(z) = memchr(0, token) {
        token = &token[..z];
    }
    let t = Tokens::new(token);
    if t.count() < 3 {
        reply(out, false, b"CLIENT_ERROR bad authentication token format");
        return Step::Done(end);
    }
    let ok = s
        .users
        .as_ref()
        .is_some_and(|u| u.check(t.get(0), t.get(1)));
    s.info.count_auth(ok);
    if ok {
        s.authenticated = true;
        reply(out, false, b"STORED");
    } else {
        reply(out, false, b"CLIENT_ERROR authentication failure");
    }
    Step::Done(end)
}

/// What a SASL request (`SASL_AUTH` / `SASL_STEP`) comes to.
pub(crate) enum Sasl {
    /// Logged in: reply `Authenticated`.
    Ok,
    /// Send the credentials with `SASL_STEP` (PLAIN without an initial response): status
    /// 0x21, empty body.
    Continue,
    /// Status 0x20 `Auth failure.`.
    Failed,
}

/// Runs `SASL_AUTH` (`step == false`) or `SASL_STEP` with mechanism `mech` and the
/// request body `data`, as memcached over Cyrus SASL answers: any SASL request first logs
/// the connection out; a connection that logged in once cannot log in again (the SASL
/// exchange is over); a failed `SASL_AUTH` ends the exchange, a failed `SASL_STEP` does not.
pub(crate) fn sasl<S: Storage>(s: &mut Session<S>, step: bool, mech: &[u8], data: &[u8]) -> Sasl {
    s.authenticated = false;
    let result = if s.sasl == SaslState::Done {
        Sasl::Failed
    } else if step {
        if s.sasl == SaslState::Started {
            plain(s, data)
        } else {
            Sasl::Failed
        }
    } else if !mech.eq_ignore_ascii_case(MECHS) {
        Sasl::Failed
    } else if data.is_empty() {
        s.sasl = SaslState::Started;
        return Sasl::Continue;
    } else {
        plain(s, data)
    };
    match result {
        Sasl::Ok => {
            s.authenticated = true;
            s.sasl = SaslState::Done;
            s.info.count_auth(true);
        }
        _ => {
            if !step && s.sasl != SaslState::Done {
                s.sasl = SaslState::Idle;
            }
            s.info.count_auth(false);
        }
    }
    result
}

/// Where a connection's SASL exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslState {
    /// None started (or the last `SASL_AUTH` failed).
    Idle,
    /// `SASL_AUTH` asked for the credentials: `SASL_STEP` may bring them.
    Started,
    /// Logged in once; the exchange is over.
    Done,
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`; an authzid must name the same user.
fn plain<S: Storage>(s: &Session<S>, msg: &[u8]) -> Sasl {
    let mut parts = msg.splitn(3, |&b| b == 0);
    let (Some(authz), Some(user), Some(pass)) = (parts.next(), parts.next(), parts.next()) else {
        return Sasl::Failed;
    };
    if memchr(0, pass).is_some() || (!authz.is_empty() && authz != user) {
        return Sasl::Failed;
    }
    if s.users.as_ref().is_some_and(|u| u.check(user, pass)) {
        Sasl::Ok
    } else {
        Sasl::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_memcached() {
        let u = Users::parse(b"a:1\r\n\nb:\nc::x").unwrap();
        assert_eq!(u.len(), 3);
        assert!(u.check(b"a", b"1"));
        assert!(u.check(b"b", b""));
        assert!(u.check(b"c", b":x"));
        assert!(!u.check(b"a", b"1\r"));
        assert!(!u.check(b"a", b""));
        assert!(!u.check(b"", b""));
        assert_eq!(
            Users::parse(b"a:1\nbad\n").unwrap_err(),
            "line 2 is not username:password"
        );
        assert!(Users::parse(b"\n\n").is_err());
    }

    #[test]
    fn ct_eq_is_equality() {
        assert_eq!(ct_eq(b"", b""), 1);
        assert_eq!(ct_eq(b"abc", b"abc"), 1);
        assert_eq!(ct_eq(b"abc", b"abd"), 0);
        assert_eq!(ct_eq(b"abc", b"ab"), 0);
        assert_eq!(ct_eq(b"ab\0", b"ab"), 0);
        assert_eq!(ct_eq(&[0xff; 40], &[0xff; 40]), 1);
        assert_eq!(ct_eq(&[0x80], &[0]), 0);
    }

    use std::sync::Arc;

    use ferrocache_core::{Config, Store};

    use crate::{Control, ServerInfo, Session};

    fn session() -> Session<Arc<Store>> {
        let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
        let info = Arc::new(ServerInfo::new("1.6.18"));
        info.set_users(Some(Users::parse(b"alice:secret\n").unwrap()));
        Session::new(store, info)
    }

    fn feed(s: &mut Session<Arc<Store>>, input: &[u8]) -> (Vec<u8>, Control) {
        let mut out = Vec::new();
        let ctl = s.feed(input, &mut out);
        (out, ctl)
    }

    #[test]
    fn text_login() {
        let mut s = session();
        assert_eq!(
            feed(&mut s, b"get a\r\n").0,
            b"CLIENT_ERROR unauthenticated\r\n"
        );
        assert_eq!(
            feed(&mut s, b"mg a v\r\n").0,
            b"CLIENT_ERROR unauthenticated\r\n"
        );
        let (out, _) = feed(&mut s, b"set x 0 0 11\r\nalice wrong\r\n");
        assert_eq!(out, b"CLIENT_ERROR authentication failure\r\n");
        assert_eq!(
            feed(&mut s, b"set x 0 0 5\r\nalice\r\n").0,
            b"CLIENT_ERROR bad authentication token format\r\n"
        );
        assert_eq!(
            feed(&mut s, b"set x 0 0 3\r\nabcde").0,
            b"CLIENT_ERROR bad command line termination\r\n"
        );
        // split across reads: the login waits for its data
        assert_eq!(
            feed(&mut s, b"\r\nset x 0 0 12\r\nalice ").0,
            b"CLIENT_ERROR unauthenticated\r\n"
        );
        assert_eq!(feed(&mut s, b"secret\r\nget a\r\n").0, b"STORED\r\nEND\r\n");
        assert!(s.is_authenticated());
        assert_eq!(s.info.auth_counts(), (2, 1));
    }

    #[test]
    fn text_login_bounded() {
        let mut s = session();
        assert_eq!(
            feed(&mut s, b"set x 0 0 4000000000\r\n").1,
            Control::Continue
        );
        assert_eq!(feed(&mut s, &[b'a'; MAX_TOKEN]).1, Control::Continue);
        assert_eq!(feed(&mut s, b"aa").1, Control::Close);
        let mut s = session();
        assert_eq!(feed(&mut s, &[b'a'; 2049]).1, Control::Close);
    }

    fn packet(op: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, op];
        p.extend_from_slice(&(key.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&((key.len() + value.len()) as u32).to_be_bytes());
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(key);
        p.extend_from_slice(value);
        p
    }

    /// (opcode, status, body) of each reply packet.
    fn replies(mut out: &[u8]) -> Vec<(u8, u16, Vec<u8>)> {
        let mut v = Vec::new();
        while out.len() >= 24 {
            let body = u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
            v.push((
                out[1],
                u16::from_be_bytes([out[6], out[7]]),
                out[24..24 + body].to_vec(),
            ));
            out = &out[24 + body..];
        }
        v
    }

    #[test]
    fn sasl_plain() {
        let mut s = session();
        let (out, ctl) = feed(
            &mut s,
            &[packet(0x20, b"", b""), packet(0x0b, b"", b"")].concat(),
        );
        assert_eq!(
            replies(&out),
            vec![(0x20, 0, b"PLAIN".to_vec()), (0x0b, 0, b"1.6.18".to_vec())]
        );
        assert_eq!(ctl, Control::Continue);
        let (out, ctl) = feed(&mut s, &packet(0x21, b"PLAIN", b"\0alice\0nope"));
        assert_eq!(replies(&out), vec![(0x21, 0x20, b"Auth failure.".to_vec())]);
        assert_eq!(ctl, Control::Continue);
        // PLAIN without initial response: continue, then the step carries it
        let (out, _) = feed(&mut s, &packet(0x21, b"plain", b""));
        assert_eq!(replies(&out), vec![(0x21, 0x21, vec![])]);
        let (out, _) = feed(
            &mut s,
            &[
                packet(0x22, b"PLAIN", b"alice\0alice\0secret"),
                packet(0x00, b"k", b""),
            ]
            .concat(),
        );
        assert_eq!(
            replies(&out),
            vec![
                (0x22, 0, b"Authenticated".to_vec()),
                (0x00, 1, b"Not found".to_vec())
            ]
        );
        assert_eq!(s.info.auth_counts(), (2, 1));
    }

    #[test]
    fn sasl_gate_closes() {
        let mut s = session();
        let (out, ctl) = feed(
            &mut s,
            &[packet(0x00, b"k", b""), packet(0x0a, b"", b"")].concat(),
        );
        assert_eq!(replies(&out), vec![(0x00, 0x20, b"Auth failure.".to_vec())]);
        assert_eq!(ctl, Control::Close);
        let mut s = session();
        let (out, _) = feed(
            &mut s,
            &[
                packet(0x21, b"PLAIN", b"bob\0alice\0secret"),
                packet(0x21, &[b'X'; 33], b"x"),
            ]
            .concat(),
        );
        assert_eq!(
            replies(&out),
            vec![
                (0x21, 0x20, b"Auth failure.".to_vec()),
                (0x21, 4, b"Invalid arguments".to_vec())
            ]
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let u = Users::parse(b"alice:topsecret\n").unwrap();
        assert!(!format!("{u:?}").contains("topsecret"));
    }
}
