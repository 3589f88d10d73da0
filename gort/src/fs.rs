//! Files and directories for goroutines: `std::fs` with every call that can
//! block run as [`blocking`](crate::blocking) does (Go's `os` package).
//!
//! Design. Regular files have no readiness (epoll refuses them, and the
//! page cache makes most reads fast anyway), so Go's answer is the
//! system-call hand-off, not the netpoller: the goroutine keeps its thread
//! and its P while the call is short; a call still inside the kernel after
//! ~20 µs (a cold read, an `fsync`) loses the P to another thread, which
//! runs the other goroutines meanwhile. Every function here is std's
//! function wrapped in that hand-off, with std's names, signatures and
//! `io::Error`s unchanged, so code moves over by changing an import. From a
//! plain thread (not a goroutine) each call is exactly std's.
//!
//! Calls that cannot block (a path's file name, a permission bit) are not
//! wrapped; the plain-data types ([`Metadata`], [`Permissions`],
//! [`FileType`], [`FileTimes`]) are std's.
//!
//! ```
//! gort::run(|| -> std::io::Result<()> {
//!     let dir = std::env::temp_dir().join(format!("gort-fs-doc-{}", std::process::id()));
//!     gort::fs::create_dir_all(&dir)?;
//!     gort::fs::write(dir.join("hello.txt"), "hello")?; // P handed off if the disk is slow
//!     assert_eq!(gort::fs::read_to_string(dir.join("hello.txt"))?, "hello");
//!     gort::fs::remove_dir_all(&dir)
//! })
//! .unwrap();
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::blocking;

pub use std::fs::{FileTimes, FileType, Metadata, Permissions};

/// Reads the whole file at `path` (std's [`std::fs::read`]).
///
/// ```
/// gort::run(|| {
///     let bytes = gort::fs::read("/proc/self/stat").unwrap();
///     assert!(!bytes.is_empty());
/// });
/// ```
#[track_caller]
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    blocking(|| std::fs::read(path))
}

/// Reads the whole file at `path` as UTF-8 (std's
/// [`std::fs::read_to_string`]).
///
/// ```
/// gort::run(|| {
///     let s = gort::fs::read_to_string("/proc/self/status").unwrap();
///     assert!(s.contains("Pid:"));
/// });
/// ```
#[track_caller]
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    blocking(|| std::fs::read_to_string(path))
}

/// Writes `contents` to `path`, creating or truncating it (std's
/// [`std::fs::write`]).
///
/// ```
/// # let p = std::env::temp_dir().join(format!("gort-doc-write-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::write(&p, b"data").unwrap();
///     assert_eq!(gort::fs::read(&p).unwrap(), b"data");
///     gort::fs::remove_file(&p).unwrap();
/// });
/// ```
#[track_caller]
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    blocking(|| std::fs::write(path, contents))
}

/// Copies the contents and permissions of `from` to `to`; returns the
/// bytes copied (std's [`std::fs::copy`]).
///
/// ```
/// # let d = std::env::temp_dir();
/// # let (a, b) = (d.join(format!("gort-doc-cp-a-{}", std::process::id())), d.join(format!("gort-doc-cp-b-{}", std::process::id())));
/// gort::run(move || {
///     gort::fs::write(&a, "abc").unwrap();
///     assert_eq!(gort::fs::copy(&a, &b).unwrap(), 3);
///     assert_eq!(gort::fs::read(&b).unwrap(), b"abc");
/// #   gort::fs::remove_file(&a).unwrap(); gort::fs::remove_file(&b).unwrap();
/// });
/// ```
#[track_caller]
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    blocking(|| std::fs::copy(from, to))
}

/// Renames `from` to `to`, replacing `to` if it exists (std's
/// [`std::fs::rename`]).
///
/// ```
/// # let d = std::env::temp_dir();
/// # let (a, b) = (d.join(format!("gort-doc-mv-a-{}", std::process::id())), d.join(format!("gort-doc-mv-b-{}", std::process::id())));
/// gort::run(move || {
///     gort::fs::write(&a, "x").unwrap();
///     gort::fs::rename(&a, &b).unwrap();
///     assert!(!gort::fs::exists(&a).unwrap() && gort::fs::exists(&b).unwrap());
/// #   gort::fs::remove_file(&b).unwrap();
/// });
/// ```
#[track_caller]
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    blocking(|| std::fs::rename(from, to))
}

/// Removes a file (std's [`std::fs::remove_file`]).
///
/// ```
/// # let p = std::env::temp_dir().join(format!("gort-doc-rm-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::write(&p, "").unwrap();
///     gort::fs::remove_file(&p).unwrap();
///     let e = gort::fs::remove_file(&p).unwrap_err();
///     assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
/// });
/// ```
#[track_caller]
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    blocking(|| std::fs::remove_file(path))
}

/// Creates a directory; its parent must exist (std's
/// [`std::fs::create_dir`]).
///
/// ```
/// # let p = std::env::temp_dir().join(format!("gort-doc-mkdir-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::create_dir(&p).unwrap();
///     assert!(gort::fs::metadata(&p).unwrap().is_dir());
///     gort::fs::remove_dir(&p).unwrap();
/// });
/// ```
#[track_caller]
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    blocking(|| std::fs::create_dir(path))
}

/// Creates a directory and its missing parents (std's
/// [`std::fs::create_dir_all`]).
///
/// ```
/// # let p = std::env::temp_dir().join(format!("gort-doc-mkdirs-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::create_dir_all(p.join("a/b/c")).unwrap();
///     gort::fs::remove_dir_all(&p).unwrap();
/// });
/// ```
#[track_caller]
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    blocking(|| std::fs::create_dir_all(path))
}

/// Removes an empty directory (std's [`std::fs::remove_dir`]).
///
/// ```
/// # let p = std::env::temp_dir().join(format!("gort-doc-rmdir-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::create_dir(&p).unwrap();
///     gort::fs::remove_dir(&p).unwrap();
///     assert!(!gort::fs::exists(&p).unwrap());
/// });
/// ```
#[track_caller]
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    blocking(|| std::fs::remove_dir(path))
}

/// Removes a directory and everything in it (std's
/// [`std::fs::remove_dir_all`]).
///
/// ```
/// # let p = std::env::temp_dir().join(format!("gort-doc-rmall-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::create_dir_all(p.join("sub")).unwrap();
///     gort::fs::write(p.join("sub/f"), "x").unwrap();
///     gort::fs::remove_dir_all(&p).unwrap();
///     assert!(!gort::fs::exists(&p).unwrap());
/// });
/// ```
#[track_caller]
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    blocking(|| std::fs::remove_dir_all(path))
}

/// The entries of a directory; each step of the iteration is a
/// (hand-off) call of its own (std's [`std::fs::read_dir`]).
///
/// ```
/// gort::run(|| {
///     let names: Vec<_> = gort::fs::read_dir("/proc/self")
///         .unwrap()
///         .map(|e| e.unwrap().file_name())
///         .collect();
///     assert!(names.iter().any(|n| n == "status"));
/// });
/// ```
#[track_caller]
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    blocking(|| std::fs::read_dir(path)).map(|inner| ReadDir { inner })
}

/// The metadata of `path`, following symbolic links (std's
/// [`std::fs::metadata`]).
///
/// ```
/// gort::run(|| assert!(gort::fs::metadata("/").unwrap().is_dir()));
/// ```
#[track_caller]
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    blocking(|| std::fs::metadata(path))
}

/// The metadata of `path` itself, not following a symbolic link (std's
/// [`std::fs::symlink_metadata`]).
///
/// ```
/// gort::run(|| {
///     let m = gort::fs::symlink_metadata("/proc/self").unwrap();
///     assert!(m.file_type().is_symlink());
/// });
/// ```
#[track_caller]
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    blocking(|| std::fs::symlink_metadata(path))
}

/// The absolute path with every link resolved (std's
/// [`std::fs::canonicalize`]).
///
/// ```
/// gort::run(|| assert_eq!(gort::fs::canonicalize("/tmp/..").unwrap(), std::path::Path::new("/")));
/// ```
#[track_caller]
pub fn canonicalize<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    blocking(|| std::fs::canonicalize(path))
}

/// Creates a hard link `link` to `original` (std's
/// [`std::fs::hard_link`]).
///
/// ```
/// # let d = std::env::temp_dir();
/// # let (a, b) = (d.join(format!("gort-doc-ln-a-{}", std::process::id())), d.join(format!("gort-doc-ln-b-{}", std::process::id())));
/// gort::run(move || {
///     gort::fs::write(&a, "same").unwrap();
///     gort::fs::hard_link(&a, &b).unwrap();
///     assert_eq!(gort::fs::read(&b).unwrap(), b"same");
/// #   gort::fs::remove_file(&a).unwrap(); gort::fs::remove_file(&b).unwrap();
/// });
/// ```
#[track_caller]
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    blocking(|| std::fs::hard_link(original, link))
}

/// The target of a symbolic link (std's [`std::fs::read_link`]).
///
/// ```
/// gort::run(|| {
///     let me = gort::fs::read_link("/proc/self").unwrap();
///     assert_eq!(me, std::path::Path::new(&std::process::id().to_string()));
/// });
/// ```
#[track_caller]
pub fn read_link<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    blocking(|| std::fs::read_link(path))
}

/// Sets the permissions of `path` (std's [`std::fs::set_permissions`]).
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// # let p = std::env::temp_dir().join(format!("gort-doc-chmod-{}", std::process::id()));
/// gort::run(move || {
///     gort::fs::write(&p, "").unwrap();
///     gort::fs::set_permissions(&p, gort::fs::Permissions::from_mode(0o600)).unwrap();
///     assert_eq!(gort::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
/// #   gort::fs::remove_file(&p).unwrap();
/// });
/// ```
#[track_caller]
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    blocking(|| std::fs::set_permissions(path, perm))
}

/// Whether `path` exists (a broken symbolic link does not); errors other
/// than "not found" (say permission denied on a parent) come back (std's
/// [`std::fs::exists`]).
///
/// ```
/// gort::run(|| {
///     assert!(gort::fs::exists("/").unwrap());
///     assert!(!gort::fs::exists("/no/such/path").unwrap());
/// });
/// ```
#[track_caller]
pub fn exists<P: AsRef<Path>>(path: P) -> io::Result<bool> {
    blocking(|| path.as_ref().try_exists())
}

/// An open file (std's [`std::fs::File`], each call that can block handed
/// off as [`blocking`](crate::blocking) does).
///
/// `Read`, `Write` and `Seek` are implemented for `File` and for `&File`
/// (the kernel's file offset is shared, as with std's). It converts from and
/// into `std::fs::File` and owned descriptors for free.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// # let p = std::env::temp_dir().join(format!("gort-doc-file-{}", std::process::id()));
/// gort::run(move || -> std::io::Result<()> {
///     let mut f = gort::fs::File::options().read(true).write(true).create(true).open(&p)?;
///     f.write_all(b"hello, file")?;
///     f.seek(SeekFrom::Start(7))?;
///     let mut s = String::new();
///     f.read_to_string(&mut s)?;
///     assert_eq!(s, "file");
///     gort::fs::remove_file(&p)
/// })
/// .unwrap();
/// ```
pub struct File {
    inner: std::fs::File,
}

impl File {
    /// Opens a file for reading (std's [`std::fs::File::open`]).
    ///
    /// ```
    /// gort::run(|| {
    ///     assert!(gort::fs::File::open("/proc/self/stat").is_ok());
    ///     let e = gort::fs::File::open("/no/such/file").unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    #[track_caller]
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        blocking(|| std::fs::File::open(path)).map(File::from)
    }

    /// Opens a file for writing, creating or truncating it (std's
    /// [`std::fs::File::create`]).
    ///
    /// ```
    /// use std::io::Write;
    /// # let p = std::env::temp_dir().join(format!("gort-doc-create-{}", std::process::id()));
    /// gort::run(move || {
    ///     gort::fs::File::create(&p).unwrap().write_all(b"new").unwrap();
    ///     assert_eq!(gort::fs::read(&p).unwrap(), b"new");
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        blocking(|| std::fs::File::create(path)).map(File::from)
    }

    /// Creates a new file for reading and writing; fails with
    /// `AlreadyExists` if it exists (std's [`std::fs::File::create_new`]).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-create-new-{}", std::process::id()));
    /// gort::run(move || {
    ///     gort::fs::File::create_new(&p).unwrap();
    ///     let e = gort::fs::File::create_new(&p).unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        blocking(|| std::fs::File::create_new(path)).map(File::from)
    }

    /// A new [`OpenOptions`], every option off (std's
    /// [`std::fs::File::options`]).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-options-{}", std::process::id()));
    /// gort::run(move || {
    ///     let f = gort::fs::File::options().append(true).create(true).open(&p).unwrap();
    ///     drop(f);
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// The file's metadata (std's [`std::fs::File::metadata`]).
    ///
    /// ```
    /// gort::run(|| {
    ///     let f = gort::fs::File::open("/").unwrap();
    ///     assert!(f.metadata().unwrap().is_dir());
    /// });
    /// ```
    #[track_caller]
    pub fn metadata(&self) -> io::Result<Metadata> {
        blocking(|| self.inner.metadata())
    }

    /// Flushes data and metadata to the device (`fsync`; std's
    /// [`std::fs::File::sync_all`]). The P is handed off while the disk
    /// works.
    ///
    /// ```
    /// use std::io::Write;
    /// # let p = std::env::temp_dir().join(format!("gort-doc-sync-{}", std::process::id()));
    /// gort::run(move || {
    ///     let mut f = gort::fs::File::create(&p).unwrap();
    ///     f.write_all(b"durable").unwrap();
    ///     f.sync_all().unwrap();
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn sync_all(&self) -> io::Result<()> {
        blocking(|| self.inner.sync_all())
    }

    /// Flushes data (and only the metadata needed to read it back) to the
    /// device (`fdatasync`; std's [`std::fs::File::sync_data`]).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-sync-data-{}", std::process::id()));
    /// gort::run(move || {
    ///     let f = gort::fs::File::create(&p).unwrap();
    ///     f.sync_data().unwrap();
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn sync_data(&self) -> io::Result<()> {
        blocking(|| self.inner.sync_data())
    }

    /// Truncates or extends the file to `size` bytes (std's
    /// [`std::fs::File::set_len`]).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-set-len-{}", std::process::id()));
    /// gort::run(move || {
    ///     let f = gort::fs::File::create(&p).unwrap();
    ///     f.set_len(4096).unwrap();
    ///     assert_eq!(f.metadata().unwrap().len(), 4096);
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        blocking(|| self.inner.set_len(size))
    }

    /// A second handle to the same open file, sharing its offset (std's
    /// [`std::fs::File::try_clone`]).
    ///
    /// ```
    /// use std::io::Read;
    /// gort::run(|| {
    ///     let f = gort::fs::File::open("/proc/self/stat").unwrap();
    ///     let mut g = f.try_clone().unwrap();
    ///     let mut buf = [0; 1];
    ///     assert_eq!(g.read(&mut buf).unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn try_clone(&self) -> io::Result<File> {
        self.inner.try_clone().map(File::from)
    }

    /// Sets the file's permissions (std's
    /// [`std::fs::File::set_permissions`]).
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// # let p = std::env::temp_dir().join(format!("gort-doc-fchmod-{}", std::process::id()));
    /// gort::run(move || {
    ///     let f = gort::fs::File::create(&p).unwrap();
    ///     f.set_permissions(gort::fs::Permissions::from_mode(0o640)).unwrap();
    ///     assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o640);
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        blocking(|| self.inner.set_permissions(perm))
    }

    /// Sets the file's access and modification times (std's
    /// [`std::fs::File::set_times`]).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// # let p = std::env::temp_dir().join(format!("gort-doc-times-{}", std::process::id()));
    /// gort::run(move || {
    ///     let f = gort::fs::File::create(&p).unwrap();
    ///     let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    ///     f.set_times(gort::fs::FileTimes::new().set_modified(t)).unwrap();
    ///     assert_eq!(f.metadata().unwrap().modified().unwrap(), t);
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn set_times(&self, times: FileTimes) -> io::Result<()> {
        blocking(|| self.inner.set_times(times))
    }

    /// Sets the file's modification time (std's
    /// [`std::fs::File::set_modified`]).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-mtime-{}", std::process::id()));
    /// gort::run(move || {
    ///     let f = gort::fs::File::create(&p).unwrap();
    ///     f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn set_modified(&self, time: std::time::SystemTime) -> io::Result<()> {
        blocking(|| self.inner.set_modified(time))
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl Read for &File {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        blocking(|| (&self.inner).read(buf))
    }
    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        blocking(|| (&self.inner).read_vectored(bufs))
    }
    // One hand-off for the whole file, not one per chunk.
    #[track_caller]
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        blocking(|| (&self.inner).read_to_end(buf))
    }
    #[track_caller]
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        blocking(|| (&self.inner).read_to_string(buf))
    }
    #[track_caller]
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        blocking(|| (&self.inner).read_exact(buf))
    }
}

impl Write for &File {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        blocking(|| (&self.inner).write(buf))
    }
    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        blocking(|| (&self.inner).write_vectored(bufs))
    }
    #[track_caller]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        blocking(|| (&self.inner).write_all(buf))
    }
    #[track_caller]
    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // a File has no user-space buffer
    }
}

impl Seek for &File {
    #[track_caller]
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        blocking(|| (&self.inner).seek(pos))
    }
}

impl Read for File {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
    #[track_caller]
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }
    #[track_caller]
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
    #[track_caller]
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        (&*self).read_exact(buf)
    }
}

impl Write for File {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    #[track_caller]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }
    #[track_caller]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    #[track_caller]
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl From<std::fs::File> for File {
    #[track_caller]
    fn from(inner: std::fs::File) -> File {
        File { inner }
    }
}

impl From<File> for std::fs::File {
    #[track_caller]
    fn from(f: File) -> std::fs::File {
        f.inner
    }
}

impl From<OwnedFd> for File {
    #[track_caller]
    fn from(fd: OwnedFd) -> File {
        File::from(std::fs::File::from(fd))
    }
}

impl From<File> for OwnedFd {
    #[track_caller]
    fn from(f: File) -> OwnedFd {
        f.inner.into()
    }
}

impl AsRawFd for File {
    #[track_caller]
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for File {
    #[track_caller]
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for File {
    #[track_caller]
    fn into_raw_fd(self) -> RawFd {
        self.inner.into_raw_fd()
    }
}

impl FromRawFd for File {
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: the caller guarantees `fd` is an open descriptor it owns
        // (the contract of `FromRawFd`), which is what std's impl requires.
        File::from(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

/// How to open a file (std's [`std::fs::OpenOptions`]); [`open`] is the
/// handed-off call.
///
/// `std::os::unix::fs::OpenOptionsExt` (`mode`, `custom_flags`) is
/// implemented too.
///
/// [`open`]: OpenOptions::open
///
/// ```
/// use std::os::unix::fs::OpenOptionsExt;
/// # let p = std::env::temp_dir().join(format!("gort-doc-oo-{}", std::process::id()));
/// gort::run(move || {
///     let f = gort::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p);
///     assert!(f.is_ok());
/// #   gort::fs::remove_file(&p).unwrap();
/// });
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    inner: std::fs::OpenOptions,
}

impl OpenOptions {
    /// Every option off (std's [`std::fs::OpenOptions::new`]).
    ///
    /// ```
    /// let o = gort::fs::OpenOptions::new();
    /// # drop(o);
    /// ```
    #[allow(clippy::new_without_default)] // as std's
    #[track_caller]
    pub fn new() -> OpenOptions {
        OpenOptions {
            inner: std::fs::OpenOptions::new(),
        }
    }

    /// Open for reading.
    ///
    /// ```
    /// gort::run(|| assert!(gort::fs::OpenOptions::new().read(true).open("/proc/self/stat").is_ok()));
    /// ```
    #[track_caller]
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.inner.read(read);
        self
    }

    /// Open for writing.
    ///
    /// ```
    /// gort::run(|| assert!(gort::fs::OpenOptions::new().write(true).open("/dev/null").is_ok()));
    /// ```
    #[track_caller]
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.inner.write(write);
        self
    }

    /// Open for appending: every write goes to the end.
    ///
    /// ```
    /// gort::run(|| assert!(gort::fs::OpenOptions::new().append(true).open("/dev/null").is_ok()));
    /// ```
    #[track_caller]
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.inner.append(append);
        self
    }

    /// Truncate an existing file to length 0 (needs `write`).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-trunc-{}", std::process::id()));
    /// gort::run(move || {
    ///     gort::fs::write(&p, "old").unwrap();
    ///     gort::fs::OpenOptions::new().write(true).truncate(true).open(&p).unwrap();
    ///     assert_eq!(gort::fs::read(&p).unwrap(), b"");
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.inner.truncate(truncate);
        self
    }

    /// Create the file if it is missing (needs `write` or `append`).
    ///
    /// ```
    /// # let p = std::env::temp_dir().join(format!("gort-doc-ocreate-{}", std::process::id()));
    /// gort::run(move || {
    ///     gort::fs::OpenOptions::new().write(true).create(true).open(&p).unwrap();
    ///     assert!(gort::fs::exists(&p).unwrap());
    /// #   gort::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.inner.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists.
    ///
    /// ```
    /// gort::run(|| {
    ///     let e = gort::fs::OpenOptions::new().write(true).create_new(true).open("/").unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    /// });
    /// ```
    #[track_caller]
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.inner.create_new(create_new);
        self
    }

    /// Opens `path` with these options (std's
    /// [`std::fs::OpenOptions::open`]); an invalid combination (say
    /// `create` without `write`) is std's `InvalidInput` error.
    ///
    /// ```
    /// gort::run(|| {
    ///     let e = gort::fs::OpenOptions::new().create(true).open("/tmp/x").unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// });
    /// ```
    #[track_caller]
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        blocking(|| self.inner.open(path)).map(File::from)
    }
}

impl std::os::unix::fs::OpenOptionsExt for OpenOptions {
    #[track_caller]
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.inner.mode(mode);
        self
    }
    #[track_caller]
    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.inner.custom_flags(flags);
        self
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    #[track_caller]
    fn from(inner: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions { inner }
    }
}

/// The iterator of [`read_dir`]: each `next` reads the directory as a
/// handed-off call (std's [`std::fs::ReadDir`]).
///
/// ```
/// gort::run(|| {
///     let mut dir = gort::fs::read_dir("/").unwrap();
///     assert!(dir.next().is_some());
/// });
/// ```
#[derive(Debug)]
pub struct ReadDir {
    inner: std::fs::ReadDir,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;
    #[track_caller]
    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        blocking(|| self.inner.next()).map(|r| r.map(|inner| DirEntry { inner }))
    }
}

/// One entry of a [`ReadDir`] (std's [`std::fs::DirEntry`]).
///
/// ```
/// gort::run(|| {
///     let e = gort::fs::read_dir("/proc/self").unwrap().next().unwrap().unwrap();
///     assert!(e.path().starts_with("/proc/self"));
/// });
/// ```
#[derive(Debug)]
pub struct DirEntry {
    inner: std::fs::DirEntry,
}

impl DirEntry {
    /// The full path: the directory read joined with the entry's name.
    ///
    /// ```
    /// gort::run(|| {
    ///     let e = gort::fs::read_dir("/").unwrap().next().unwrap().unwrap();
    ///     assert_eq!(e.path().parent(), Some(std::path::Path::new("/")));
    /// });
    /// ```
    #[track_caller]
    pub fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// The entry's name, without the directory.
    ///
    /// ```
    /// gort::run(|| {
    ///     let e = gort::fs::read_dir("/").unwrap().next().unwrap().unwrap();
    ///     assert!(!e.file_name().is_empty());
    /// });
    /// ```
    #[track_caller]
    pub fn file_name(&self) -> OsString {
        self.inner.file_name()
    }

    /// The entry's metadata, not following a symbolic link (std's
    /// [`std::fs::DirEntry::metadata`]).
    ///
    /// ```
    /// gort::run(|| {
    ///     let e = gort::fs::read_dir("/").unwrap().next().unwrap().unwrap();
    ///     let _ = e.metadata().unwrap().len();
    /// });
    /// ```
    #[track_caller]
    pub fn metadata(&self) -> io::Result<Metadata> {
        blocking(|| self.inner.metadata())
    }

    /// The entry's type, not following a symbolic link (usually known from
    /// the directory listing; otherwise a handed-off `lstat`).
    ///
    /// ```
    /// gort::run(|| {
    ///     let status = gort::fs::read_dir("/proc/self").unwrap()
    ///         .map(|e| e.unwrap())
    ///         .find(|e| e.file_name() == "status")
    ///         .unwrap();
    ///     assert!(status.file_type().unwrap().is_file());
    /// });
    /// ```
    #[track_caller]
    pub fn file_type(&self) -> io::Result<FileType> {
        blocking(|| self.inner.file_type())
    }

    /// The entry's inode number, from the listing (no system call).
    ///
    /// ```
    /// gort::run(|| {
    ///     let e = gort::fs::read_dir("/").unwrap().next().unwrap().unwrap();
    ///     assert!(e.ino() > 0);
    /// });
    /// ```
    #[track_caller]
    pub fn ino(&self) -> u64 {
        std::os::unix::fs::DirEntryExt::ino(&self.inner)
    }
}
