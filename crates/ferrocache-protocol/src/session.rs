//! [`Session`]: one connection's codec state. Bytes go in as they arrive, replies come
//! out; partial requests stay buffered here between reads.
//!
//! The protocol is chosen on the first byte, as memcached does: `0x80` is binary, anything
//! else text (classic and meta commands share one parser).

use std::sync::Arc;

use crate::auth::{SaslState, Users};
use crate::info::ServerInfo;
use crate::storage::Storage;

/// What the server should do with the connection after [`Session::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep reading.
    Continue,
    /// Write out the replies produced so far, then close (quit, or a protocol error that
    /// memcached answers by closing).
    Close,
    /// Write out the replies, close, and shut the server down (`shutdown` with `-A`).
    Shutdown,
    /// Write out the replies, write a snapshot, reply to it (`OK` or `SERVER_ERROR ...`),
    /// then call [`Session::feed`] again (with no new bytes) for the requests after it,
    /// which wait in the session's buffer.
    Snapshot,
}

/// Partial input up to this size is not charged to the server-wide in-flight budget
/// ([`ServerInfo::set_inflight_limit`]): request lines and small values never hit it.
const UNCHARGED: usize = 16 * 1024;

/// memcached's `READ_BUFFER_SIZE`: a TCP read takes at most this much (less the part of an
/// unfinished request line or header it holds). A value running past its read is read
/// straight from the socket, and what follows is a read of its own.
const MC_READ: u64 = 16 * 1024;

/// Limits a session enforces on its own input buffer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request line without `\n` longer than this closes the connection (memcached: 2048),
    /// unless it is a `get`/`gets` line.
    pub max_line: usize,
    /// Longest `get`/`gets` line (memcached lets multigets grow without bound; we stop
    /// here and close).
    pub max_get_line: usize,
    /// Reply bytes one [`Session::feed`] produces before it stops taking requests: the
    /// rest wait in the session ([`Session::held_back`]), a multiget resumes at its next
    /// key. At least one request (one key) is served per call. Bounds what a client that
    /// does not read its replies, or one `get` of a big key repeated, can make us hold.
    pub max_reply: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 2048,
            max_get_line: 1 << 20,
            max_reply: 4 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Unknown,
    Text,
    Binary,
}

/// How far one request got.
pub(crate) enum Step {
    /// A request was handled; this many bytes are used up.
    Done(usize),
    /// The request is incomplete; nothing used.
    More,
    /// Close after these bytes, sending the replies so far (quit, binary argument errors).
    Close(usize),
    /// Hang up on junk without a word, as memcached does (overlong line, HTTP request,
    /// bad binary magic): replies not yet sent, those of this read, are dropped too.
    Abort,
    /// Shut the server down.
    Shutdown(usize),
    /// Stop here: the server writes a snapshot and replies, then feeds again.
    Snapshot(usize),
    /// The replies reached [`Limits::max_reply`] within this request (a multiget): stop
    /// without using it up; the next feed resumes it.
    Yield,
}

/// One connection's protocol state over a [`Storage`].
///
/// ```
/// use std::sync::Arc;
/// use ferrocache_core::{Config, Store};
/// use ferrocache_protocol::{Control, ServerInfo, Session};
/// let store = Arc::new(Store::new(Config::default().background(false)).unwrap());
/// let mut s = Session::new(store, Arc::new(ServerInfo::new("1.6.18")));
/// let mut out = Vec::new();
/// assert_eq!(s.feed(b"set k 0 0 2\r\nhi\r\nget k\r\n", &mut out), Control::Continue);
/// assert_eq!(out, b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
/// ```
pub struct Session<S: Storage> {
    pub(crate) store: S,
    pub(crate) info: Arc<ServerInfo>,
    pub(crate) limits: Limits,
    buf: Vec<u8>,
    proto: Proto,
    /// Bytes still to discard (the value of a refused storage request).
    pub(crate) swallow: usize,
    /// The pending storage command's prefix `set` is counted: memcached counts it when it
    /// reads the command, before the value (which may never come).
    pub(crate) set_recorded: bool,
    /// The text reply to that refused request: memcached sends it once the value has been
    /// swallowed (it only writes out when it next looks for a command).
    pub(crate) after_swallow: Vec<u8>,
    /// Reused for decoded base64 keys, so meta requests do not allocate.
    pub(crate) scratch: Vec<u8>,
    /// Set by a codec when memcached would write its replies out right after this request
    /// (what an abort can no longer take back).
    pub(crate) flush: bool,
    /// Length `out` had at memcached's last write-out point of this feed: replies after it
    /// are the unsent ones a hang-up, or a multiget's overlong key, throws away.
    pub(crate) sent: usize,
    /// `out.len()` when the last feed returned: a feed finding `out` still that long (not
    /// drained) continues the same read.
    out_len_after: usize,
    /// A request ran since memcached's last write-out point of this read (its response
    /// object is stacked even when quiet and empty): `watch` and `lru_crawler metadump`
    /// are refused then, as memcached's `resp_has_stack` check.
    pub(crate) stacked: bool,
    /// [`Session::start_read`] was called: the next feed begins a new socket read.
    read_start: bool,
    /// Requests handled in this read so far, over all its feeds (memcached writes out
    /// after the 21st and then every 20th).
    read_handled: usize,
    /// This feed begins a new memcached read (not a further slice of the last one).
    new_read: bool,
    /// Stream offset of the first byte the next `run` sees (`buf`'s first, else `input`'s).
    stream_off: u64,
    /// Stream offset where memcached's current read ends (see [`MC_READ`]): a request line
    /// or header reaching past it is a new read (memcached writes out before it reads on),
    /// a value or skipped body running past it ends with a write-out and a new read.
    read_end: u64,
    closed: bool,
    /// The request that closed the session was refused with an error, or hung up on
    /// (binary): see [`Session::closes_at_once`].
    pub(crate) close_at_once: bool,
    /// The request that closed the session was a `quit` (text, binary QUIT or QUITQ): see
    /// [`Session::closed_by_quit`].
    pub(crate) close_quit: bool,
    /// The session hung up on a binary header longer than memcached's read buffer: see
    /// [`Session::closes_with_reset`].
    close_reset: bool,
    /// The users logins are checked against (`None`: authentication is off).
    pub(crate) users: Option<Arc<Users>>,
    /// Logged in, or no login needed; until then only the login requests are served.
    pub(crate) authenticated: bool,
    /// The binary protocol's SASL exchange.
    pub(crate) sasl: SaslState,
    /// Requests handled so far (the idle timeout watches it for clients that trickle).
    requests: u64,
    /// `out.len()` when this feed began: replies past `limits.max_reply` stop the feed.
    reply_start: usize,
    /// The last feed stopped at the reply budget with complete requests left.
    held: bool,
    /// Where a multiget that reached the reply budget resumes: the byte offset of its next
    /// key in the request line (which stays first in the buffer).
    pub(crate) get_resume: Option<usize>,
    /// Where an `lru_crawler metadump` that reached the reply budget resumes: its classes
    /// and the walk's cursor (its request line stays first in the buffer).
    pub(crate) dump_resume: Option<(Box<[bool; 64]>, crate::storage::VisitCursor)>,
    /// Bytes of `buf`'s capacity charged to the server-wide in-flight budget.
    charged: usize,
    /// The connection's descriptor, as the `watch` log shows it (`cfd=`); -1 unknown.
    pub(crate) cfd: i32,
    /// The `watch` command made this connection a watcher: it runs no more commands
    /// (what it sends is ignored) and its log lines come from [`crate::watch::Logger`].
    pub(crate) watcher: Option<u64>,
    /// Where each reply message memcached's UDP would send ends in `out`
    /// ([`Session::frame_messages`]); `None` (TCP): nothing recorded.
    messages: Option<Vec<usize>>,
    /// Where the next response object begins in `out` (recorded only with `messages`).
    object_start: usize,
    /// A message went out since the last write-out point: memcached sends an empty
    /// response object only first in a write-out (a bare header), later ones go with it.
    absorbing: bool,
}

impl<S: Storage> Session<S> {
    /// Whether an earlier request of this read is unwritten or stacked since the last
    /// write-out point: memcached then refuses to hand the connection over (`watch`,
    /// `lru_crawler metadump`), as its `resp_has_stack` check.
    pub(crate) fn behind_earlier_requests(&self, out: &[u8]) -> bool {
        out.len() > self.sent || self.stacked
    }

    /// A session for a new connection.
    pub fn new(store: S, info: Arc<ServerInfo>) -> Session<S> {
        Session::with_limits(store, info, Limits::default())
    }

    /// A session with explicit input limits.
    pub fn with_limits(store: S, info: Arc<ServerInfo>, limits: Limits) -> Session<S> {
        let users = info.users();
        Session {
            authenticated: users.is_none(),
            users,
            sasl: SaslState::Idle,
            requests: 0,
            reply_start: 0,
            held: false,
            get_resume: None,
            dump_resume: None,
            charged: 0,
            cfd: -1,
            watcher: None,
            messages: None,
            object_start: 0,
            absorbing: false,
            store,
            info,
            limits,
            buf: Vec::new(),
            proto: Proto::Unknown,
            swallow: 0,
            set_recorded: false,
            after_swallow: Vec::new(),
            scratch: Vec::new(),
            flush: false,
            sent: 0,
            out_len_after: 0,
            stacked: false,
            read_start: false,
            read_handled: 0,
            new_read: false,
            stream_off: 0,
            read_end: MC_READ,
            closed: false,
            close_at_once: false,
            close_quit: false,
            close_reset: false,
        }
    }

    /// Marks the start of a new socket read: the next feed begins it, so what earlier
    /// feeds answered counts as written out and no request of this read has run yet. A
    /// caller that feeds each read whole with a drained `out` need not call it, but
    /// without it a read whose requests were all quiet (nothing in `out`) cannot be told
    /// from a slice of the same read, and a `watch` or `lru_crawler metadump` at the start
    /// of the next read would be refused as pipelined behind them.
    pub fn start_read(&mut self) {
        self.read_start = true;
    }

    /// Parses and executes every complete request in the bytes received so far (earlier
    /// leftovers first, then `input`), appending all replies to `out`. Incomplete requests
    /// are kept for the next call. After `Close`/`Shutdown` further input is ignored.
    ///
    /// One feed stands for one memcached socket read (cut further where memcached's 16 KiB
    /// reads end, see `MC_READ`): replies already in `out` count as written,
    /// unless `out` is exactly as the last feed left it (a caller slicing one socket read
    /// into several feeds passes it back undrained): then they are still unsent, and a
    /// hang-up or a multiget's overlong key drops them as memcached would.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Control {
        if self.closed {
            return Control::Close;
        }
        if self.watcher.is_some() {
            return Control::Continue;
        }
        // counted before the requests run, as memcached counts a read: a `stats` in it
        // reports its own bytes
        self.info.add_io(input.len(), 0);
        let out_start = out.len();
        self.new_read = self.read_start || out_start != self.out_len_after;
        // a read going on where the reply budget stopped it is still one write-out
        if self.new_read && !self.held {
            self.absorbing = false;
        }
        self.object_start = out_start;
        if self.new_read {
            self.sent = out_start;
            self.stacked = false;
            self.read_start = false;
            self.read_handled = 0;
            if !self.held {
                // a value (or skipped body) begun in the last read is read on from the
                // socket: that read ended with what was buffered; else the leftover of a
                // request line starts this read
                let pending = self.swallow > 0 || self.header_len(&self.buf).is_some();
                self.read_end = if pending {
                    self.stream_off + self.buf.len() as u64
                } else {
                    self.stream_off + MC_READ
                };
            }
        }
        self.sent = self.sent.min(out_start);
        self.reply_start = out_start;
        self.held = false;
        let ctl = if self.buf.is_empty() {
            // Common case: parse straight from the caller's buffer, copy only leftovers.
            let (used, ctl) = self.run(input, out);
            self.stream_off += used.min(input.len()) as u64;
            if matches!(ctl, Ok(Control::Continue | Control::Snapshot)) {
                self.buf.extend_from_slice(&input[used..]);
            }
            ctl
        } else {
            self.buf.extend_from_slice(input);
            let mut buf = std::mem::take(&mut self.buf);
            let (used, ctl) = self.run(&buf, out);
            self.stream_off += used.min(buf.len()) as u64;
            buf.drain(..used.min(buf.len()));
            self.buf = buf;
            ctl
        };
        let mut ctl = match ctl {
            Ok(ctl) => ctl,
            Err(sent) => {
                out.truncate(sent);
                // a binary hang-up (bad magic, a header over memcached's read buffer) closes
                // at once too: memjs settles its pending calls on the reset, not on a FIN
                self.close_at_once = self.proto == Proto::Binary;
                Control::Close
            }
        };
        if matches!(ctl, Control::Continue | Control::Snapshot) && !self.charge_buffer() {
            // memcached's answer when it has no memory for a value on its way in
            if self.proto != Proto::Binary {
                out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
            }
            ctl = Control::Close;
        }
        if !matches!(ctl, Control::Continue | Control::Snapshot) {
            self.closed = true;
            self.buf = Vec::new();
            self.charge_buffer();
        }
        if let Some(ends) = self.messages.as_mut() {
            // replies a hang-up took back are gone; bytes of no recorded object (a
            // request that closed the session, say) are one message
            let len = out.len();
            while ends.last().is_some_and(|&end| end > len) {
                ends.pop();
            }
            if ends.last().map_or(len > 0, |&end| len > end) {
                ends.push(len);
                self.absorbing = true;
            }
            self.object_start = len;
        }
        // a hang-up may take back replies an earlier feed of this read left: the counter
        // goes down by them (it wraps back), as memcached never wrote them
        self.info.add_io(0, out.len().wrapping_sub(out_start));
        self.out_len_after = out.len();
        ctl
    }

    /// Records where each reply message ends, as memcached's UDP sends them: each
    /// response object (a request's replies, or one key's of a text multiget) is its own
    /// message, a `noreply` or quiet meta one is skipped, and an empty one (a get's miss
    /// before its last key, a quiet binary request answered with nothing) goes out as a
    /// bare header only first in a write-out. Off by default: TCP pays one branch per
    /// request for it.
    pub fn frame_messages(&mut self) {
        self.messages.get_or_insert_with(Vec::new);
    }

    /// The session serves datagrams ([`Session::frame_messages`] was called): UDP.
    pub(crate) fn is_datagram(&self) -> bool {
        self.messages.is_some()
    }

    /// With [`Session::frame_messages`]: the end offsets in `out` of the reply messages
    /// since [`Session::clear_messages`] (ascending; an end equal to the one before it, or a
    /// first end of 0, is an empty message: a bare header). Empty when not recording.
    pub fn messages(&self) -> &[usize] {
        self.messages.as_deref().unwrap_or(&[])
    }

    /// Forgets the recorded message ends: call it when `out` is drained.
    pub fn clear_messages(&mut self) {
        if let Some(ends) = self.messages.as_mut() {
            ends.clear();
        }
    }

    /// The response object that began at the last one's end ends at `end`; `bare`: an
    /// empty one is memcached's empty object (sent as a bare header first in a
    /// write-out), not a skipped one.
    #[inline]
    pub(crate) fn end_object(&mut self, end: usize, bare: bool) {
        if self.messages.is_some() {
            self.record_object(end, bare);
        }
    }

    /// [`Session::end_object`] when recording (kept out of line: TCP never calls it).
    #[inline(never)]
    fn record_object(&mut self, end: usize, bare: bool) {
        let Some(ends) = self.messages.as_mut() else {
            return;
        };
        if end > self.object_start || (bare && !self.absorbing) {
            ends.push(end);
            self.absorbing = true;
        }
        self.object_start = end;
    }

    /// `out` was cut back to `len` (replies memcached culls before writing them out):
    /// messages past it are gone.
    pub(crate) fn cull_messages(&mut self, len: usize) {
        let Some(ends) = self.messages.as_mut() else {
            return;
        };
        while ends.last().is_some_and(|&end| end > len) {
            ends.pop();
        }
        self.object_start = self.object_start.min(len);
        self.absorbing = ends
            .last()
            .is_some_and(|&end| end == len && end > self.sent);
    }

    /// Brings the buffer's charge on the server-wide in-flight budget up to date, giving
    /// back the room a finished large value left; false when the budget is spent.
    fn charge_buffer(&mut self) -> bool {
        let cap = self.buf.capacity();
        if cap > 4 * UNCHARGED && self.buf.len() < cap / 4 {
            self.buf.shrink_to(self.buf.len().max(UNCHARGED));
        }
        let want = if self.buf.capacity() > UNCHARGED {
            self.buf.capacity()
        } else {
            0
        };
        if want > self.charged && !self.info.charge_inflight(want - self.charged) {
            return false;
        }
        if want < self.charged {
            self.info.release_inflight(self.charged - want);
        }
        self.charged = want;
        true
    }

    /// Whether the last feed stopped at [`Limits::max_reply`] with requests (or the rest
    /// of a multiget) still to run: write the replies, then feed again (an empty input
    /// is enough).
    pub fn held_back(&self) -> bool {
        self.held
    }

    /// Whether the session closed on a binary request it refused with an error reply
    /// (`0x0004 Invalid arguments` for an empty or overlong key, say) or hung up on (bad
    /// magic, a header over memcached's read buffer): memcached 1.6.18 closes such a
    /// connection as soon as the replies are written, so what the client sends after it
    /// meets a reset rather than being read and dropped.
    pub fn closes_at_once(&self) -> bool {
        self.closed && self.close_at_once
    }

    /// Whether the session hung up on a binary header, extras and key longer than
    /// memcached's read buffer: memcached closes with the rest of that request unread, so
    /// its client meets a reset (RST), and memjs fails its pending calls at once; with a
    /// FIN they waited for its timeout.
    pub fn closes_with_reset(&self) -> bool {
        self.closed && self.close_reset
    }

    /// Whether the session closed on the client's `quit` (text, or binary QUIT/QUITQ):
    /// memcached 1.6.18 logs that close (`watch connevents`) as `reason=normal`, as it does
    /// a client hanging up, and every other close it makes (a refused binary request, an
    /// HTTP line, an overlong line, bad magic) as `reason=error`, its default.
    pub fn closed_by_quit(&self) -> bool {
        self.closed && self.close_quit
    }

    /// Whether this feed's replies reached [`Limits::max_reply`] (an overlong `get` key
    /// may have culled `out` to below where the feed began: then it holds none).
    pub(crate) fn over_budget(&self, out: &[u8]) -> bool {
        out.len().saturating_sub(self.reply_start) >= self.limits.max_reply
    }

    /// How much of `out` memcached would have written to the socket by now: replies up to
    /// its last write-out point of the current read (see [`Session::feed`]). A caller may
    /// send that much before the read ends; a later hang-up or a multiget's overlong key
    /// in the same read never takes back replies before it.
    pub fn written_out(&self) -> usize {
        self.sent
    }

    /// Bytes held back waiting for the rest of a request.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Requests handled since the connection opened, complete or refused (a multiget
    /// answered in pieces counts each piece): a client whose count stops while
    /// [`Session::buffered`] bytes wait is trickling a request in.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Whether the connection may run commands: it logged in, or authentication is off.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Sets the connection's descriptor, shown as `cfd=` in `watch` lines.
    pub fn set_fd(&mut self, fd: i32) {
        self.cfd = fd;
    }

    /// The watcher id once `watch` made this connection one: the server writes what
    /// `ServerInfo::watch.take(id, …)` gives it to this connection's socket.
    pub fn watcher(&self) -> Option<u64> {
        self.watcher
    }

    /// Whether the connection speaks the binary protocol (decided by its first byte).
    pub fn is_binary(&self) -> bool {
        self.proto == Proto::Binary
    }

    /// Handles requests from `data` until it runs out; returns bytes used and what to do
    /// next, or `Err(n)`: hang up, keeping only the first `n` bytes of `out` (what
    /// memcached would already have written).
    fn run(&mut self, data: &[u8], out: &mut Vec<u8>) -> (usize, Result<Control, usize>) {
        // memcached writes replies out after certain commands and after the 21st request
        // of a read (the first plus `reqs_per_event`, 20 unless `-R`), then every 20th
        // (measured: 21, 41, 61, 81, 101); later replies of the same read are lost if it
        // hangs up.
        let mut pos = 0;
        loop {
            if self.swallow > 0 {
                // a skip running past its read (or left over from an earlier one):
                // memcached reads just the rest of it from the socket, then writes its
                // replies out, and what follows is a read of its own
                let n = self.swallow.min(data.len() - pos);
                self.swallow -= n;
                pos += n;
                if self.swallow > 0 {
                    return (pos, Ok(Control::Continue));
                }
                out.append(&mut self.after_swallow);
                self.end_object(out.len(), false);
                let end = self.stream_off + pos as u64;
                if self.models_reads() && end > self.read_end {
                    self.new_mc_read(out.len(), end);
                }
            }
            let rest = &data[pos..];
            if rest.is_empty() {
                return (pos, Ok(Control::Continue));
            }
            if self.proto == Proto::Unknown {
                // `-B ascii|binary`: the other protocol's bytes are read as this one's
                self.proto = match self.info.switches.protocols() {
                    crate::info::Protocols::Ascii => Proto::Text,
                    crate::info::Protocols::Binary => Proto::Binary,
                    crate::info::Protocols::Auto if rest[0] == 0x80 => Proto::Binary,
                    crate::info::Protocols::Auto => Proto::Text,
                };
            }
            if self.models_reads() {
                if let Some(hang_up) = self.check_read_boundary(rest, pos, data.len(), out.len()) {
                    return (data.len(), Err(hang_up));
                }
            }
            self.flush = false;
            let step = match self.proto {
                Proto::Binary => crate::binary::step(self, rest, out),
                _ if !self.authenticated => crate::auth::text_step(self, rest, out),
                _ => crate::text::step(self, rest, out),
            };
            match step {
                Step::Done(n) => {
                    pos += n;
                    // a command done: the next storage command counts its prefix set anew
                    self.set_recorded = false;
                    self.read_handled += 1;
                    self.requests += 1;
                    let n = self.read_handled;
                    let per_event = self.info.switches.reqs_per_event();
                    self.end_object(out.len(), self.proto == Proto::Binary);
                    let end = self.stream_off + pos as u64;
                    if self.models_reads() && end > self.read_end {
                        // its value ran past the read: memcached read the rest straight
                        // from the socket, writes out, and reads anew
                        self.new_mc_read(out.len(), end.saturating_add(MC_READ));
                    } else if self.flush || (n > per_event && (n - 1).is_multiple_of(per_event)) {
                        self.sent = out.len();
                        self.absorbing = false;
                        self.stacked = false;
                    } else {
                        self.stacked = true;
                    }
                    if self.watcher.is_some() {
                        // memcached hands the connection to its logger: the rest is ignored
                        return (data.len(), Ok(Control::Continue));
                    }
                    if pos < data.len() && self.swallow == 0 && self.over_budget(out) {
                        self.held = true;
                        return (pos, Ok(Control::Continue));
                    }
                }
                Step::Yield => {
                    // a multiget making progress is not a stalled client
                    self.requests += 1;
                    self.held = true;
                    return (pos, Ok(Control::Continue));
                }
                Step::More => return (pos, Ok(Control::Continue)),
                Step::Close(n) => return (pos + n, Ok(Control::Close)),
                Step::Shutdown(n) => return (pos + n, Ok(Control::Shutdown)),
                Step::Snapshot(n) => return (pos + n, Ok(Control::Snapshot)),
                Step::Abort => return (data.len(), Err(self.sent)),
            }
        }
    }
}

impl<S: Storage> Session<S> {
    /// Whether TCP's read boundaries are modelled: not for UDP (one datagram is one read,
    /// memcached's UDP buffer holds any).
    fn models_reads(&self) -> bool {
        self.messages.is_none()
    }

    /// The length of the request line (through `\n`) or binary header with extras and
    /// key at the start of `data`, if all there: what memcached needs in its buffer
    /// before it parses a request.
    fn header_len(&self, data: &[u8]) -> Option<usize> {
        match self.proto {
            Proto::Binary if data.len() < 24 => None,
            Proto::Binary if data[0] != 0x80 => Some(24),
            Proto::Binary => {
                let key = u16::from_be_bytes([data[2], data[3]]) as usize;
                Some(24 + data[4] as usize + key).filter(|&h| h <= data.len())
            }
            _ => memchr::memchr(b'\n', data).map(|i| i + 1),
        }
    }

    /// Before the request at `pos` of `data` (`rest`): when its line or header reaches
    /// past memcached's read, memcached writes its replies out and reads on, the leftover
    /// first in its buffer. `Some(sent)`: it hangs up instead (a line with no `\n` in
    /// more than 2048 bytes of its buffer that is not a multiget, a binary header with its
    /// extras and key over the whole buffer).
    fn check_read_boundary(
        &mut self,
        rest: &[u8],
        pos: usize,
        data_len: usize,
        out_len: usize,
    ) -> Option<usize> {
        let data_end = self.stream_off + data_len as u64;
        if data_end <= self.read_end {
            // nothing buffered reaches past the read: the usual case, without a line scan
            return None;
        }
        let start = self.stream_off + pos as u64;
        let header_end = self.header_len(rest).map(|h| start + h as u64);
        let crosses = |read_end: u64| header_end.map_or(data_end > read_end, |e| e > read_end);
        if !crosses(self.read_end) {
            return None;
        }
        let text = self.proto == Proto::Text;
        let held = self.read_end.saturating_sub(start);
        if !text || held <= self.limits.max_line as u64 {
            self.new_mc_read(out_len, start.saturating_add(MC_READ));
            if !crosses(self.read_end) {
                return None;
            }
            if !text {
                // a binary header, extras and key longer than memcached's whole read
                // buffer: it fills without them and memcached hangs up, with no reply
                // (measured: a get with a 16360-byte key answers 0x0004, 16361 a reset)
                self.close_reset = true;
                return Some(self.sent);
            }
        }
        // no `\n` in more than 2048 bytes of memcached's buffer
        if !long_get_line(rest) {
            return Some(self.sent);
        }
        // a multiget line: memcached's buffer grows to take all there is
        self.new_mc_read(out_len, u64::MAX);
        None
    }

    /// A memcached write-out point that also begins its next read, ending at `read_end`:
    /// replies so far count as sent and the per-read request count starts over.
    fn new_mc_read(&mut self, out_len: usize, read_end: u64) {
        self.sent = out_len;
        self.absorbing = false;
        self.stacked = false;
        self.read_handled = 0;
        self.read_end = read_end;
    }
}

/// memcached's test of a line with no `\n` in the first 2048 bytes: kept (its buffer
/// grows) only for `get `/`gets ` after at most 100 spaces.
fn long_get_line(line: &[u8]) -> bool {
    let spaces = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[spaces..];
    spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}

impl<S: Storage> Drop for Session<S> {
    fn drop(&mut self) {
        self.info.release_inflight(self.charged);
        if let Some(id) = self.watcher {
            self.info.watch.remove_watcher(id);
        }
    }
}
