//! Thin async file helpers over glommio's io_uring files, with storage's error type.
//!
//! `.log` files are opened buffered (through the page cache, never `O_DIRECT`) so fetches are
//! served from page cache and can be handed to `sendfile`.

use crate::error::{gio, Result, StorageError};
use glommio::io::{BufferedFile, Directory, OpenOptions};
use std::path::{Path, PathBuf};

/// An I/O error and the file it concerns, as a closure run by [`off_reactor`] reports it.
pub type PathError = (PathBuf, std::io::Error);

/// Runs `f` on glommio's blocking thread and maps its error to storage's. Every blocking
/// file-system call storage makes itself goes through here (producer snapshots too): one may wait for the disk (a directory listing, a `stat`, an inode or bitmap block to read,
/// an fsync), and on a core's own thread it would stall every partition of the core (see
/// `docs/ARCHITECTURE.md`). `crate::testing::forbid_file_syscalls` catches a call made on the
/// executor's thread in tests.
pub async fn off_reactor<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, PathError> + Send + 'static,
) -> Result<T> {
    glommio::executor()
        .spawn_blocking(f)
        .await
        .map_err(|(p, e)| StorageError::io(p, e))
}

pub async fn open_rw(path: &Path, create: bool) -> Result<BufferedFile> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .buffered_open(path)
        .await
        .map_err(|e| gio(path, e))
}

/// Writes all of `buf` at `pos`. glommio takes the buffer, so a short write (only seen on a full
/// disk) cannot be resumed without a copy kept for that rare case; it is reported as an I/O
/// error instead, which takes the log offline, and recovery cuts the torn tail on the next open.
pub async fn write_all_at(file: &BufferedFile, path: &Path, buf: Vec<u8>, pos: u64) -> Result<()> {
    let len = buf.len();
    let n = file.write_at(buf, pos).await.map_err(|e| gio(path, e))?;
    if n != len {
        return Err(StorageError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {n} of {len} bytes"),
            ),
        ));
    }
    Ok(())
}

/// Writes all of `slices` (gathered, in order) at `pos` with plain `pwritev` calls on the
/// executor thread; `slices` is consumed as it is written.
///
/// Why not io_uring here: a buffered write to ext4/xfs submitted through io_uring is punted to
/// a kernel worker thread, and that hand-off costs more than the copy into the page cache
/// (measured: 16 KiB appends through glommio's `write_at` reached 0.3x of a plain `write`; the
/// same appends with `pwrite` run at memory-copy speed). A page-cache write blocks only when the
/// kernel throttles dirty pages, which is back-pressure the broker should feel anyway — Kafka
/// writes the same way. Reads for fetch never come here (they are `sendfile`d). Tried again
/// with group commit: through io_uring the core never blocked in a write, but e2e p99 at
/// 130k msg/s got worse (17-135 ms vs 9-17 ms), as a blocked write then holds its log's later
/// appends behind it in the worker.
pub fn pwritev_all(
    file: &BufferedFile,
    path: &Path,
    mut slices: &mut [std::io::IoSlice<'_>],
    mut pos: u64,
) -> Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // Linux takes at most IOV_MAX (1024) slices per call.
    const IOV_MAX: usize = 1024;
    while !slices.is_empty() {
        let n_slices = slices.len().min(IOV_MAX);
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, the slices are valid for
        // the call, and `fd` is open for its duration (the file is borrowed).
        let n = unsafe {
            libc::pwritev(
                fd,
                slices.as_ptr().cast::<libc::iovec>(),
                n_slices as libc::c_int,
                pos as libc::off_t,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(StorageError::io(path, e));
        }
        if n == 0 {
            return Err(StorageError::io(
                path,
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            ));
        }
        std::io::IoSlice::advance_slices(&mut slices, n as usize);
        pos += n as u64;
    }
    Ok(())
}

/// Reserves disk blocks for `[from, from + len)` of the open file `fd` without changing its
/// size (`FALLOC_FL_KEEP_SIZE`), so readers and recovery still see only written bytes. May block
/// (it can read block bitmaps): call it on a blocking thread, with `fd` kept open meanwhile.
/// Returns `Ok(false)` where the file system cannot preallocate, so the caller can stop asking.
pub fn preallocate_fd(
    fd: std::os::fd::RawFd,
    path: PathBuf,
    from: u64,
    len: u64,
) -> std::result::Result<bool, PathError> {
    // SAFETY: plain syscall; the caller keeps `fd` open for its duration.
    let r = unsafe {
        libc::fallocate(
            fd,
            libc::FALLOC_FL_KEEP_SIZE,
            from as libc::off_t,
            len as libc::off_t,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err((path, e)),
    }
}

/// Cuts a file to `size` bytes on glommio's blocking thread; on a segment this releases the
/// blocks reserved past its end. Why off the reactor: freeing extents may read block bitmaps
/// from disk, the same kind of read that blocked a core for 0.5 s in `fallocate` and `mkdir`.
/// The blocking thread gets its own duplicate of the descriptor, so it stays valid whatever
/// happens to `file` (or to this future) meanwhile.
pub async fn truncate_off_reactor(file: &BufferedFile, path: &Path, size: u64) -> Result<()> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: the borrowed file keeps the descriptor open for this call.
    let fd = unsafe { BorrowedFd::borrow_raw(file.as_raw_fd()) }
        .try_clone_to_owned()
        .map_err(|e| StorageError::io(path, e))?;
    let path = path.to_path_buf();
    off_reactor(move || {
        // SAFETY: plain syscall on a descriptor this closure owns.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
            return Err((path, std::io::Error::last_os_error()));
        }
        Ok(())
    })
    .await
}

/// Reads up to `len` bytes at `pos`; fewer only at end of file.
pub async fn read_at(file: &BufferedFile, path: &Path, pos: u64, len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let got = file
            .read_at(pos + out.len() as u64, len - out.len())
            .await
            .map_err(|e| gio(path, e))?;
        if got.is_empty() {
            break;
        }
        out.extend_from_slice(&got);
    }
    Ok(out)
}

/// Reads a whole small file, or `None` if it does not exist.
pub async fn read_small_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match OpenOptions::new().read(true).buffered_open(path).await {
        Ok(f) => f,
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(StorageError::io(path, e));
        }
    };
    let size = file.file_size().await.map_err(|e| gio(path, e))?;
    let bytes = read_at(&file, path, 0, size as usize).await?;
    file.close().await.map_err(|e| gio(path, e))?;
    Ok(Some(bytes))
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync it, rename it over the
/// old one, fsync the directory. A crash leaves either the old or the new content, never a mix.
///
/// Runs on glommio's blocking thread (see [`sync_off_reactor`] for why fsyncs stay off the
/// io_uring rings): checkpoints of thousands of partitions every few seconds would otherwise
/// occupy the kernel workers the data path's file operations need.
pub async fn write_atomic(path: &Path, bytes: Vec<u8>) -> Result<()> {
    let path = path.to_path_buf();
    off_reactor(move || {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| (tmp.clone(), e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_data())
            .map_err(|e| (tmp.clone(), e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| (path.clone(), e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| (dir.to_path_buf(), e))
    })
    .await
}

/// Writes `bytes` at the start of `path` (created if missing) and fdatasyncs it, on glommio's
/// blocking thread; a file created here also gets its directory fsynced. For small records
/// rewritten in place (no new inode per write, unlike [`write_atomic`]): the caller must
/// tolerate a torn write (checksums, and a second copy written at other times).
pub async fn overwrite_in_place(path: &Path, bytes: Vec<u8>) -> Result<()> {
    let path = path.to_path_buf();
    off_reactor(move || {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| (path.clone(), e))?;
        let created = f.metadata().map_err(|e| (path.clone(), e))?.len() == 0;
        f.write_all_at(&bytes, 0)
            .and_then(|()| f.sync_data())
            .map_err(|e| (path.clone(), e))?;
        if created {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| (dir.to_path_buf(), e))?;
        }
        Ok(())
    })
    .await
}

/// fdatasyncs `file`, then the files at `others`, then fsyncs `dir`, all on glommio's blocking
/// thread rather than through the io_uring rings. Why: fsyncing a rolled 64 MiB segment takes
/// 100 ms and more on ext4, and through io_uring it occupied the kernel workers that the
/// writer's own file operations (opening the next segment, writing its indexes) then queued
/// behind: produce tails of 200-500 ms at every roll (0.2 s p99 at 130k msg/s, 16 ms with these
/// fsyncs off the rings). `file` must stay open until this returns.
pub async fn sync_off_reactor(
    file: &BufferedFile,
    path: PathBuf,
    others: Vec<PathBuf>,
    dir: PathBuf,
) -> Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    off_reactor(move || {
        // SAFETY: the caller keeps the descriptor open until this closure has returned.
        if unsafe { libc::fdatasync(fd) } != 0 {
            return Err((path, std::io::Error::last_os_error()));
        }
        for p in others {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .and_then(|f| f.sync_data())
                .map_err(|e| (p.clone(), e))?;
        }
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| (dir.clone(), e))
    })
    .await
}

/// The one workaround for glommio 0.9's relative paths: its `Directory::open`, `OpenOptions`
/// opens and `statx` pass descriptor -1 instead of `AT_FDCWD` as the directory a path is
/// relative to, so every relative path fails with EBADF ("Bad file descriptor"). Every path
/// storage hands to glommio derives from a log's directory, so making that absolute when the
/// log is opened covers them all.
pub fn absolute_for_glommio(dir: PathBuf) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir);
    }
    std::path::absolute(&dir).map_err(|e| StorageError::io(&dir, e))
}

/// Creates `dir` (and missing parents) on glommio's blocking thread. Why: `mkdir` may read an
/// inode table block from disk; traced on a core while 2000 partitions were created under
/// 270 MB/s of writeback, one inline `mkdir` blocked the core for 616 ms.
pub async fn create_dir_off_reactor(dir: &Path) -> Result<()> {
    let dir = dir.to_path_buf();
    off_reactor(move || std::fs::create_dir_all(&dir).map_err(|e| (dir, e))).await
}

/// The names of the entries of `dir` (those that are UTF-8; no file of a log's is not), listed
/// on glommio's blocking thread: reading a large directory reads its blocks from disk.
pub async fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let dir = dir.to_path_buf();
    off_reactor(move || {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| (dir.clone(), e))? {
            let entry = entry.map_err(|e| (dir.clone(), e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    })
    .await
}

/// Renames `from` to `to`; `Ok(false)` if `from` does not exist. (glommio runs the rename on
/// its blocking thread.)
pub async fn rename_if_exists(from: &Path, to: &Path) -> Result<bool> {
    match glommio::io::rename(from, to).await {
        Ok(()) => Ok(true),
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(false)
            } else {
                Err(StorageError::io(to, e))
            }
        }
    }
}

/// The modification times of `paths` in ms since the epoch, `0` for a file that cannot be
/// read, all from one trip to the blocking thread.
pub async fn modified_ms(paths: Vec<PathBuf>) -> Vec<i64> {
    let times = off_reactor(move || {
        Ok(paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64)
            })
            .collect())
    })
    .await;
    times.unwrap_or_default()
}

/// Sets the modification time of `path` to `ms` since the epoch.
pub async fn set_modified_ms(path: &Path, ms: i64) -> Result<()> {
    let path = path.to_path_buf();
    off_reactor(move || {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(time))
            .map_err(|e| (path, e))
    })
    .await
}

/// fsyncs a directory so that creations, renames and removals in it are durable.
pub async fn sync_dir(dir: &Path) -> Result<()> {
    let d = Directory::open(dir).await.map_err(|e| gio(dir, e))?;
    d.sync().await.map_err(|e| gio(dir, e))?;
    d.close().await.map_err(|e| gio(dir, e))
}

/// Removes a file; a file already gone is not an error.
pub async fn remove_if_exists(path: &Path) -> Result<()> {
    match glommio::io::remove(path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(StorageError::io(path, e))
            }
        }
    }
}

/// Reads the last `len` bytes of a file whose size is a multiple of `len`; `None` if the file is
/// missing, empty, or not a whole number of `len`-byte entries.
pub async fn read_small_file_tail(path: &Path, len: usize) -> Result<Option<Vec<u8>>> {
    let file = match OpenOptions::new().read(true).buffered_open(path).await {
        Ok(f) => f,
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(StorageError::io(path, e));
        }
    };
    let size = file.file_size().await.map_err(|e| gio(path, e))?;
    let out = if size == 0 || size % len as u64 != 0 {
        None
    } else {
        Some(read_at(&file, path, size - len as u64, len).await?)
    };
    file.close().await.map_err(|e| gio(path, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_writes_go_out_whole_past_the_kernels_slice_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let file = open_rw(&path, true).await.unwrap();
                // 3000 slices of varied lengths: three calls' worth at IOV_MAX per call.
                let parts: Vec<Vec<u8>> = (0..3000u32)
                    .map(|i| vec![(i % 251) as u8; (i % 7 + 1) as usize])
                    .collect();
                let mut slices: Vec<std::io::IoSlice<'_>> =
                    parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
                pwritev_all(&file, &path, &mut slices, 5).unwrap();
                let expected: Vec<u8> = parts.concat();
                let got = read_at(&file, &path, 5, expected.len() + 10).await.unwrap();
                assert_eq!(got, expected);
                file.close().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
