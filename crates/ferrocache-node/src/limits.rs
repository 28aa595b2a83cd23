//! The process's open-file limit, for the command line's `-c`: memcached raises it to the
//! connection limit at start and stops when it cannot, rather than dropping connections
//! later when descriptors run out.
// napi-rs registers the exports only outside `cfg(test)`
#![cfg_attr(test, allow(dead_code))]

use napi_derive::napi;

/// Makes room for `connections` open sockets, as memcached's start does: when the
/// open-file limit (`RLIMIT_NOFILE`) is lower, the soft and hard limits are raised to
/// `connections` (as memcached sets them); false when that is refused (the hard limit
/// needs privileges). With room already, the soft limit is raised towards the hard one
/// for the process's own descriptors and nothing is refused. Always true off Unix.
#[napi]
pub fn raise_file_limit(connections: u32) -> bool {
    raise(connections)
}

#[cfg(unix)]
fn raise(connections: u32) -> bool {
    use libc::rlim_t;
    /// Descriptors the process needs besides its client connections (listeners, the
    /// event loop, worker threads, log and data files), granted when the hard limit allows.
    const OWN: rlim_t = 64;
    let connections = rlim_t::from(connections);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return true; // nothing known to check against
    }
    if lim.rlim_max == libc::RLIM_INFINITY || lim.rlim_max >= connections {
        // room already: only the soft limit, for the process's own descriptors too
        let soft = connections.saturating_add(OWN).min(lim.rlim_max);
        if lim.rlim_cur < soft {
            lim.rlim_cur = soft;
            // SAFETY: as above; a refusal leaves the limit as it was, which has room.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        }
        return true;
    }
    let raised = libc::rlimit {
        rlim_cur: connections,
        rlim_max: connections,
    };
    // SAFETY: `raised` is a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 }
}

#[cfg(not(unix))]
fn raise(_connections: u32) -> bool {
    true
}
