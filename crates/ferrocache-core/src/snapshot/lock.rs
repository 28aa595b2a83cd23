//! One cache per data directory: an exclusive `flock` on `DIR/LOCK`, taken before the first
//! snapshot is read and held until the [`DirLock`] is dropped. Two caches writing snapshots
//! and one append-only log into the same directory would delete each other's files; the
//! second one (in this process or another) gets [`SnapshotError::Locked`] instead. The kernel
//! drops the lock when the process ends however it ends (`kill -9` included), so a crash
//! never leaves a stale lock; the file itself stays and holds the last owner's process id.

use super::{io_err, SnapshotError};
use std::fs::{File, OpenOptions};
#[cfg(unix)]
use std::io::Read;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive hold on a data directory; released on drop.
#[derive(Debug)]
pub struct DirLock {
    /// `None` when the directory is read-only and has no lock file: no cache can write
    /// there, so there is nothing to keep apart (saves fail and are reported).
    _file: Option<File>,
    path: PathBuf,
}

impl DirLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock on `dir` (created if missing) without waiting.
pub fn lock(dir: &Path) -> Result<DirLock, SnapshotError> {
    super::files::create_dir(dir).map_err(|e| io_err(dir, "create the data directory", e))?;
    let path = dir.join(LOCK_FILE);
    let opened = super::files::private(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        0,
    )
    .open(&path);
    let mut file = match opened {
        Ok(f) => f,
        // a read-only directory (permissions, a read-only mount): lock the file if it is
        // there (flock needs no write access), else there is nothing to protect
        Err(e) if read_only(&e) => match File::open(&path) {
            Ok(f) => f,
            Err(_) => return Ok(DirLock { _file: None, path }),
        },
        Err(e) => return Err(io_err(&path, "open", e)),
    };
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this File owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_err(&path, "lock", e));
            }
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            return Err(SnapshotError::Locked {
                path,
                holder: owner.trim().parse().ok(),
            });
        }
    }
    // for the error a second cache gets; best effort, the lock is what counts
    let _ = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(DirLock {
        _file: Some(file),
        path,
    })
}

fn read_only(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EROFS) {
        return true;
    }
    e.kind() == std::io::ErrorKind::PermissionDenied
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_second_lock_fails_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("ferrocache-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = lock(&dir).unwrap();
        assert_eq!(first.path(), dir.join(LOCK_FILE));
        #[cfg(unix)]
        {
            let e = lock(&dir).unwrap_err();
            match &e {
                SnapshotError::Locked { path, holder } => {
                    assert_eq!(path, &dir.join(LOCK_FILE));
                    assert_eq!(*holder, Some(std::process::id()));
                }
                other => panic!("expected Locked, got {other}"),
            }
            let msg = e.to_string();
            assert!(msg.contains("is in use by another cache"), "{msg}");
            assert!(
                msg.contains(&format!("process {}", std::process::id())),
                "{msg}"
            );
        }
        drop(first);
        let again = lock(&dir).unwrap();
        drop(again);
        let _ = fs::remove_dir_all(&dir);
    }
}
