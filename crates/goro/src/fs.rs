//! File system helpers that run on the blocking pool: `std::fs`'s one-shot
//! functions with the same names and signatures, each a single
//! [`blocking`] call.
//!
//! Linux has no readiness for regular files (epoll reports them always
//! ready, and a read may still wait on the disk), so file I/O cannot go
//! through the network poller. Calling `std::fs` straight from a goroutine
//! would hold its worker, and every goroutine queued on that worker, for as
//! long as the disk takes; these helpers hand the call to a pool thread and
//! park only the calling goroutine.
//!
//! ```
//! let path = std::env::temp_dir().join(format!("goro-doc-fs-{}.txt", std::process::id()));
//! let p = path.clone();
//! let text = goro::go(move || {
//!     goro::fs::write(&p, "hello")?;
//!     goro::fs::read_to_string(&p)
//! })
//! .join()
//! .unwrap()
//! .unwrap();
//! assert_eq!(text, "hello");
//! goro::fs::remove_file(&path).unwrap();
//! ```
//!
//! Each helper copies its path arguments (and `write` its contents) into
//! owned values first, because the pool thread may not borrow from the
//! goroutine's stack. For many small operations on one file, or for
//! streaming through a `File`, wrap the whole sequence in one
//! `goro::blocking` call instead of paying a hand-off per step.
//!
//! # Blocking
//!
//! Every function parks a goroutine (its worker runs others meanwhile); on a
//! plain thread it is the std call.

use std::fs::{DirEntry, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::blocking;

/// Reads a whole file into a vector (as [`std::fs::read`]).
///
/// # Errors
///
/// As `std::fs::read`: `NotFound`, `PermissionDenied`, ...
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read(path))
}

/// Reads a whole UTF-8 file into a string (as [`std::fs::read_to_string`]).
///
/// # Errors
///
/// As `std::fs::read_to_string`; `InvalidData` if the file is not UTF-8.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read_to_string(path))
}

/// Writes `contents` as the whole file, creating or truncating it (as
/// [`std::fs::write`]). The contents are copied once, for the pool thread.
///
/// # Errors
///
/// As `std::fs::write`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    let contents = contents.as_ref().to_vec();
    blocking(move || std::fs::write(path, contents))
}

/// Metadata of a file or directory, following symbolic links (as
/// [`std::fs::metadata`]).
///
/// # Errors
///
/// As `std::fs::metadata`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::metadata(path))
}

/// Metadata of a path without following a final symbolic link (as
/// [`std::fs::symlink_metadata`]).
///
/// # Errors
///
/// As `std::fs::symlink_metadata`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::symlink_metadata(path))
}

/// Whether `path` exists (as `std::fs::exists`): `Ok(false)` only when it
/// certainly does not, an error when that cannot be told (for example
/// `PermissionDenied` on a parent directory).
///
/// # Errors
///
/// As `Path::try_exists`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn exists<P: AsRef<Path>>(path: P) -> io::Result<bool> {
    let path = path.as_ref().to_path_buf();
    blocking(move || path.try_exists())
}

/// Creates a directory (as [`std::fs::create_dir`]).
///
/// # Errors
///
/// As `std::fs::create_dir`: `AlreadyExists`, `NotFound` for a missing
/// parent, ...
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::create_dir(path))
}

/// Creates a directory and any missing parents (as
/// [`std::fs::create_dir_all`]).
///
/// # Errors
///
/// As `std::fs::create_dir_all`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::create_dir_all(path))
}

/// Removes a file (as [`std::fs::remove_file`]).
///
/// # Errors
///
/// As `std::fs::remove_file`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::remove_file(path))
}

/// Removes an empty directory (as [`std::fs::remove_dir`]).
///
/// # Errors
///
/// As `std::fs::remove_dir`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::remove_dir(path))
}

/// Removes a directory and everything in it (as
/// [`std::fs::remove_dir_all`]).
///
/// # Errors
///
/// As `std::fs::remove_dir_all`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::remove_dir_all(path))
}

/// Renames `from` to `to`, replacing `to` if it exists (as
/// [`std::fs::rename`]).
///
/// # Errors
///
/// As `std::fs::rename` (for example across file systems).
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    let from = from.as_ref().to_path_buf();
    let to = to.as_ref().to_path_buf();
    blocking(move || std::fs::rename(from, to))
}

/// Copies the contents and permissions of `from` to `to`, returning the
/// number of bytes copied (as [`std::fs::copy`]).
///
/// # Errors
///
/// As `std::fs::copy`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    let from = from.as_ref().to_path_buf();
    let to = to.as_ref().to_path_buf();
    blocking(move || std::fs::copy(from, to))
}

/// Creates a hard link `link` to `original` (as [`std::fs::hard_link`]).
///
/// # Errors
///
/// As `std::fs::hard_link`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    let original = original.as_ref().to_path_buf();
    let link = link.as_ref().to_path_buf();
    blocking(move || std::fs::hard_link(original, link))
}

/// The target of a symbolic link (as [`std::fs::read_link`]).
///
/// # Errors
///
/// As `std::fs::read_link`.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn read_link<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read_link(path))
}

/// The entries of a directory, read to the end on the pool (unlike
/// [`std::fs::read_dir`], which returns a lazy iterator whose every step
/// would be a blocking call). The order is the file system's, as std's.
///
/// A `DirEntry`'s `file_name`, `path` and (on most file systems)
/// `file_type` need no further I/O; its `metadata` does, so call
/// [`metadata`] or `goro::blocking` for that.
///
/// # Errors
///
/// As `std::fs::read_dir`, or the first error met while reading entries.
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call plus `collect`.
#[track_caller]
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<Vec<DirEntry>> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::read_dir(path)?.collect())
}

/// The absolute path with every symbolic link and `.`/`..` resolved (as
/// [`std::fs::canonicalize`]).
///
/// # Errors
///
/// As `std::fs::canonicalize` (`NotFound` if a component is missing).
///
/// # Blocking
///
/// Parks a goroutine; on a plain thread it is the std call.
#[track_caller]
pub fn canonicalize<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref().to_path_buf();
    blocking(move || std::fs::canonicalize(path))
}
