//! The data directory: file names, the newest-first listing, pruning and moving bad files
//! aside.
//!
//! A finished snapshot is `snapshot-<generation>.fcs` (generation = 1 + the largest one in
//! the directory, zero-padded so names sort by age); it is written as
//! `snapshot-<generation>.fcs.tmp` and renamed when durable. A file that fails to load is
//! renamed to `….corrupt` (`….unsupported` for another format version) and kept for
//! inspection.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".fcs";
pub const TMP_SUFFIX: &str = ".tmp";

/// The generation in a snapshot file's name, and whether it is a finished snapshot.
fn parse(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let gen = rest[..digits].parse().ok()?;
    let tail = rest[digits..].strip_prefix(SUFFIX)?;
    Some((gen, tail.is_empty()))
}

pub fn name(gen: u64) -> String {
    format!("{PREFIX}{gen:010}{SUFFIX}")
}

/// Every file of ours in `dir`: (generation, finished, path).
fn entries(dir: &Path) -> io::Result<Vec<(u64, bool, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if let Some((gen, done)) = e.file_name().to_str().and_then(parse) {
            out.push((gen, done, e.path()));
        }
    }
    Ok(out)
}

/// Finished snapshots, newest first.
pub fn snapshots(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut v: Vec<_> = entries(dir)?
        .into_iter()
        .filter(|e| e.1)
        .map(|(g, _, p)| (g, p))
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(v)
}

/// The generation a new snapshot takes: above every file of ours, moved-aside ones too, and
/// above every sealed segment of the append-only log ([`crate::aof`]: a segment is named by
/// the snapshot that began after it, so the next one must sort after it).
pub fn next_generation(dir: &Path) -> io::Result<u64> {
    let snapshots = entries(dir)?.iter().map(|e| e.0).max().unwrap_or(0);
    let segments = crate::aof::segments(dir)?.last().map_or(0, |s| s.0);
    Ok(snapshots.max(segments) + 1)
}

/// Deletes finished snapshots beyond the newest `keep`, and temp files older than `gen`
/// (left by a writer that was killed). Errors are ignored: pruning is housekeeping.
pub fn prune(dir: &Path, keep: usize, gen: u64) -> Vec<PathBuf> {
    let mut removed = remove_stale_tmp(dir, gen);
    let Ok(all) = entries(dir) else {
        return removed;
    };
    let mut done: Vec<_> = all.iter().filter(|e| e.1).collect();
    done.sort_by_key(|e| std::cmp::Reverse(e.0));
    for e in done.into_iter().skip(keep.max(1)) {
        if fs::remove_file(&e.2).is_ok() {
            removed.push(e.2.clone());
        }
    }
    removed
}

/// Deletes the temp files of generations below `gen`: a writer killed mid-save left them
/// (one save runs at a time, and one cache per directory), and on a nearly full disk their
/// space is what the next save needs. Errors are ignored.
pub fn remove_stale_tmp(dir: &Path, gen: u64) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for (g, done, path) in entries(dir).unwrap_or_default() {
        let tmp = path.to_str().is_some_and(|p| p.ends_with(TMP_SUFFIX));
        if !done && g < gen && tmp && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Renames `path` to `path.<suffix>` (numbered if that exists) and returns the new name.
pub fn move_aside(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let base = path.as_os_str().to_owned();
    let mut to = PathBuf::from(format!("{}.{suffix}", base.to_string_lossy()));
    let mut n = 1;
    while to.exists() {
        to = PathBuf::from(format!("{}.{suffix}.{n}", base.to_string_lossy()));
        n += 1;
    }
    fs::rename(path, &to)?;
    Ok(to)
}

/// Creates the data directory for this user only (0700 before the umask; missing parents
/// as usual): its files hold every cached value. An existing directory keeps its mode.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    match b.create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        r => r,
    }
}

/// Makes `opts` create files readable by this user only (0600: snapshots and logs hold
/// every cached value) and refuse a symlink in the file's place (`O_NOFOLLOW`: one planted
/// in the directory would otherwise aim a truncation at any file the server may write).
/// `extra` are more `open(2)` flags (they replace earlier custom flags).
pub fn private(opts: &mut fs::OpenOptions, extra: i32) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW | extra);
    }
    #[cfg(not(unix))]
    let _ = extra;
    opts
}

/// Runs `op` again for as long as it fails with [`io::ErrorKind::Interrupted`] (EINTR: a
/// signal whose handler was installed without `SA_RESTART` landed in the call), for the
/// snapshot files and the append-only log alike. std restarts its own `open`, `fsync`,
/// `fdatasync`, `ftruncate` (`set_len`), `read_exact`, `read_to_end` and `write_all`, but
/// not a single `read` or `write`, nor the `copy_file_range`/`sendfile` that `io::copy`
/// uses between two files: those go through this. Only for calls that can run again: one
/// cut short reports what it did, or leaves the file offsets past it (`io::copy` then goes
/// on from there).
pub fn retry_interrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file; its renames are journaled.
        let _ = dir;
        Ok(())
    }
}

/// Called between two file operations of a save or a log rotation, naming the step just
/// done. Test builds only: a test installs [`CRASH_HOOK`] (on its own thread) to copy the
/// directory as a `kill -9` at that moment would leave it; otherwise nothing.
#[inline]
pub fn step(dir: &Path, what: &'static str) {
    #[cfg(test)]
    CRASH_HOOK.with(|h| {
        if let Some(f) = h.borrow_mut().as_mut() {
            f(dir, what)
        }
    });
    #[cfg(not(test))]
    let _ = (dir, what);
}

/// Test builds only: see [`step`].
#[cfg(test)]
type Hook = Box<dyn FnMut(&Path, &'static str)>;
#[cfg(test)]
thread_local! {
    pub static CRASH_HOOK: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        assert_eq!(parse(&name(42)), Some((42, true)));
        assert_eq!(parse("snapshot-0000000042.fcs.tmp"), Some((42, false)));
        assert_eq!(parse("snapshot-0000000042.fcs.corrupt"), Some((42, false)));
        assert_eq!(parse("snapshot-.fcs"), None);
        assert_eq!(parse("other-1.fcs"), None);
        assert_eq!(parse("snapshot-1.rdb"), None);
    }
}
