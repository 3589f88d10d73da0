//! Tests of `gort::fs`: with one processor, a goroutine reading a 64 MiB
//! file or fsyncing a written one does not stop another goroutine (its
//! ticks are counted while the call is inside the kernel); errors are
//! std's, kind and OS code alike; `File` through `&File`, seeks, clones
//! and conversions; directories; plain-thread use.
//!
//! No wall-clock upper bounds: progress is a count observed across the
//! call, and the only durations are generous give-up bounds.

mod common;
use common::{rt, watchdog, Ticker};

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};

use gort::fs::{self, File, OpenOptions};

/// A fresh directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("gort-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MIB: usize = 1 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

/// Calls `op` until the ticker has run more than `MIN_TICKS` times in
/// total while `op` was inside (at most `TRIES` calls); returns the ticks
/// and the calls it took. On a loaded machine one call can end before the
/// OS gets round to the thread the processor went to, hence the retries;
/// without a hand-off the ticker, on the only processor, never runs.
fn ticks_during(ticker: &Ticker, mut op: impl FnMut()) -> (u64, usize) {
    let mut ticks = 0;
    for call in 1..=TRIES {
        let t0 = ticker.now();
        op();
        ticks += ticker.now() - t0;
        if ticks > MIN_TICKS {
            return (ticks, call);
        }
    }
    (ticks, TRIES)
}

const MIN_TICKS: u64 = 10;
const TRIES: usize = 8;

#[test]
fn reading_64_mib_and_fsync_hand_the_processor_off() {
    let _w = watchdog("fs hand-off");
    let dir = TempDir::new("handoff");
    let big = dir.join("big");
    let data = pattern(64 * MIB);
    std::fs::write(&big, &data).unwrap();
    let out = dir.join("written");
    let (read, sync, same) = rt(1).run(move || {
        let ticker = Ticker::start(gort::yield_now);
        let mut same = true;
        let read = ticks_during(&ticker, || same &= fs::read(&big).unwrap() == data);
        let f = File::create(&out).unwrap();
        let sync = ticks_during(&ticker, || {
            // 64 MiB of dirty pages, then to the disk.
            (&f).rewind().unwrap();
            (&f).write_all(&data).unwrap();
            f.sync_all().unwrap();
        });
        (read, sync, same)
    });
    assert!(same, "the 64 MiB came back changed");
    eprintln!(
        "ticker ran {} times during {} reads of 64 MiB, {} times during {} writes+fsyncs",
        read.0, read.1, sync.0, sync.1
    );
    assert!(
        read.0 > MIN_TICKS,
        "ticker ran {} times during {TRIES} reads",
        read.0
    );
    assert!(
        sync.0 > MIN_TICKS,
        "ticker ran {} times during {TRIES} fsyncs",
        sync.0
    );
}

#[test]
fn many_goroutines_reading_files_on_one_processor() {
    let _w = watchdog("fs many readers");
    let dir = TempDir::new("many");
    for i in 0..8 {
        std::fs::write(dir.join(&i.to_string()), pattern(MIB + i)).unwrap();
    }
    let root = dir.0.clone();
    let ok = rt(1).run(move || {
        let hs: Vec<_> = (0..32)
            .map(|k| {
                let p = root.join((k % 8).to_string());
                gort::go(move || fs::read(p).unwrap() == pattern(MIB + k % 8))
            })
            .collect();
        hs.into_iter().all(|h| h.join().unwrap())
    });
    assert!(ok);
}

/// `e` has std's kind and OS error code for the same failing call.
fn same_error(e: io::Error, std_e: io::Error) {
    assert_eq!(e.kind(), std_e.kind(), "{e} vs std's {std_e}");
    assert_eq!(
        e.raw_os_error(),
        std_e.raw_os_error(),
        "{e} vs std's {std_e}"
    );
}

#[test]
fn errors_are_std_errors() {
    let _w = watchdog("fs errors");
    let dir = TempDir::new("errors");
    let d = dir.0.clone();
    rt(1).run(move || {
        let missing = d.join("missing");
        let e = File::open(&missing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        same_error(e, std::fs::File::open(&missing).unwrap_err());
        same_error(
            fs::read(&missing).unwrap_err(),
            std::fs::read(&missing).unwrap_err(),
        );
        same_error(
            fs::metadata(&missing).unwrap_err(),
            std::fs::metadata(&missing).unwrap_err(),
        );
        same_error(
            fs::read_dir(&missing).unwrap_err(),
            std::fs::read_dir(&missing).unwrap_err(),
        );
        same_error(
            fs::remove_file(&missing).unwrap_err(),
            std::fs::remove_file(&missing).unwrap_err(),
        );
        assert!(!fs::exists(&missing).unwrap());

        fs::write(d.join("f"), "x").unwrap();
        let e = File::create_new(d.join("f")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/g"), "y").unwrap();
        let e = fs::remove_dir(d.join("sub")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::DirectoryNotEmpty);
        let e = fs::read_dir(d.join("f")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
        std::fs::write(d.join("bin"), [0xff, 0xfe]).unwrap();
        let e = fs::read_to_string(d.join("bin")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = OpenOptions::new()
            .create(true)
            .open(d.join("h"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn permission_denied_is_std_permission_denied() {
    let _w = watchdog("fs EACCES");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!(
            "skipped: running as root, whom file modes do not stop (CAP_DAC_OVERRIDE), \
             so EACCES cannot be provoked"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("eacces");
    let locked = dir.join("locked");
    std::fs::write(&locked, "secret").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    rt(1).run(move || {
        let e = File::open(&locked).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        same_error(e, std::fs::File::open(&locked).unwrap_err());
        let e = fs::read(&locked).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    });
}

#[test]
fn file_read_write_seek_through_shared_references() {
    let _w = watchdog("fs file io");
    let dir = TempDir::new("fileio");
    let p = dir.join("f");
    rt(2).run(move || {
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        (&f).write_all(b"0123456789").unwrap();
        assert_eq!((&f).seek(SeekFrom::Start(3)).unwrap(), 3);
        let mut buf = [0; 4];
        (&f).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"3456");
        // A clone shares the offset.
        let mut g = f.try_clone().unwrap();
        assert_eq!(g.stream_position().unwrap(), 7);
        let mut rest = String::new();
        g.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "789");
        // Generic std code takes it.
        fn copy_all(r: &mut impl Read, w: &mut impl Write) -> io::Result<u64> {
            io::copy(r, w)
        }
        let mut sink = Vec::new();
        (&f).rewind().unwrap();
        assert_eq!(copy_all(&mut &f, &mut sink).unwrap(), 10);
        assert_eq!(sink, b"0123456789");
        f.set_len(4).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 4);
        f.sync_data().unwrap();

        // Conversions keep the descriptor.
        let fd = f.as_raw_fd();
        let s: std::fs::File = f.into();
        assert_eq!(s.as_raw_fd(), fd);
        let f = File::from(s);
        let raw = f.into_raw_fd();
        // SAFETY: `raw` came from `into_raw_fd` just above and is owned here.
        let mut f = unsafe { File::from_raw_fd(raw) };
        f.rewind().unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"0123");
        let owned: std::os::fd::OwnedFd = f.into();
        drop(File::from(owned));
        assert_eq!(fs::read(&p).unwrap(), b"0123");
    });
}

#[test]
fn directories_and_paths() {
    let _w = watchdog("fs dirs");
    let dir = TempDir::new("dirs");
    let d = dir.0.clone();
    rt(1).run(move || {
        fs::create_dir_all(d.join("a/b/c")).unwrap();
        for n in ["x", "y", "z"] {
            fs::write(d.join("a").join(n), n).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(d.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["b", "x", "y", "z"]);
        for e in fs::read_dir(d.join("a")).unwrap() {
            let e = e.unwrap();
            let is_dir = e.file_type().unwrap().is_dir();
            assert_eq!(is_dir, e.file_name() == "b");
            assert_eq!(e.metadata().unwrap().is_dir(), is_dir);
            assert_eq!(e.path(), d.join("a").join(e.file_name()));
        }
        assert_eq!(fs::copy(d.join("a/x"), d.join("a/x2")).unwrap(), 1);
        fs::rename(d.join("a/x2"), d.join("a/b/x3")).unwrap();
        assert_eq!(fs::read_to_string(d.join("a/b/x3")).unwrap(), "x");
        fs::hard_link(d.join("a/y"), d.join("a/y2")).unwrap();
        std::os::unix::fs::symlink(d.join("a/z"), d.join("a/zl")).unwrap();
        assert_eq!(fs::read_link(d.join("a/zl")).unwrap(), d.join("a/z"));
        assert!(fs::symlink_metadata(d.join("a/zl"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::metadata(d.join("a/zl")).unwrap().is_file());
        assert_eq!(
            fs::canonicalize(d.join("a/b/../zl")).unwrap(),
            std::fs::canonicalize(d.join("a/z")).unwrap()
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d.join("a/y"), fs::Permissions::from_mode(0o604)).unwrap();
        assert_eq!(
            fs::metadata(d.join("a/y2")).unwrap().permissions().mode() & 0o777,
            0o604
        );
        fs::remove_file(d.join("a/y2")).unwrap();
        fs::remove_dir(d.join("a/b/c")).unwrap();
        fs::remove_dir_all(d.join("a")).unwrap();
        assert!(!fs::exists(d.join("a")).unwrap());
    });
}

#[test]
fn plain_threads_get_std_behaviour() {
    // No runtime anywhere: each call is std's.
    let dir = TempDir::new("plain");
    let p: &Path = &dir.join("f");
    fs::write(p, "plain").unwrap();
    let mut f = File::open(p).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "plain");
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
    assert_eq!(
        fs::read("/nonexistent/x").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}
