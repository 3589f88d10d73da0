//! Goroutine stacks: reserve, guard, lazily commit, pool, trim.
//!
//! A stack is a slice of a large anonymous `MAP_NORESERVE` reservation
//! (a *chunk* holds many stacks), with one guard page below it. The kernel
//! commits physical pages only when touched, so an idle goroutine costs the
//! one or two pages its frames use. Carving many stacks from one mapping
//! keeps the process far below `vm.max_map_count` (65,530 here) even with
//! millions of goroutines.
//!
//! Guard pages are installed with `madvise(MADV_GUARD_INSTALL)` (Linux
//! 6.13+), which marks the page in the page tables without splitting the
//! mapping. Older kernels fall back to `mprotect(PROT_NONE)`, which splits
//! the mapping; when that hits the mapping limit the error names
//! `vm.max_map_count`.
//!
//! Freed stacks go back to the pool of their size (the scheduler keeps a
//! per-P cache of finished goroutines with their stacks in front of it, so
//! spawning in steady state makes no syscall). A stack whose deep pages
//! were touched gives them back with `MADV_DONTNEED`, keeping only the top
//! [`KEEP`] bytes committed. The check reads one page below the kept region
//! (a TLB miss and a 4 KiB scan), so the scheduler runs it on every 8th
//! exit of a goroutine struct rather than every exit: a deep stack is given
//! back within a few reuses, and the common path stays cheap.

pub(crate) mod overflow;

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::runtime::lock::Lock;

/// Default usable stack size: 256 KiB of address space, committed by the
/// kernel only as touched.
///
/// ```
/// assert_eq!(gort::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest stack a goroutine may ask for.
///
/// ```
/// gort::run(|| {
///     let too_small = gort::Builder::new().stack_size(gort::MIN_STACK_SIZE - 1).spawn(|| ());
///     assert!(too_small.is_err());
/// });
/// ```
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest stack a goroutine may ask for (1 GiB, Go's maximum as well).
///
/// ```
/// let err = gort::runtime::Builder::new().stack_size(gort::MAX_STACK_SIZE + 1).build();
/// assert!(err.is_err());
/// ```
pub const MAX_STACK_SIZE: usize = 1 << 30;
/// Bytes at the top of a stack kept committed across reuse.
pub(crate) const KEEP: usize = 32 * 1024;
/// Address space reserved per chunk (MAP_NORESERVE: costs no memory).
const CHUNK_BYTES: usize = 256 << 20;

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize })
}

/// Rounds `size` up to whole pages and checks it against the allowed range.
/// `setting` names the option in the error message.
pub(crate) fn validate_size(size: usize, setting: &str) -> io::Result<usize> {
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "gort: {setting} = {size} bytes is out of range: a goroutine stack must be \
                 between {} KiB and {} MiB",
                MIN_STACK_SIZE / 1024,
                MAX_STACK_SIZE >> 20
            ),
        ));
    }
    let page = page_size();
    Ok(size.div_ceil(page) * page)
}

/// One goroutine stack: `[guard page][usable bytes]`, growing down from
/// `top()`.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Lowest address: the start of the guard page.
    guard: usize,
    /// Usable bytes above the guard.
    size: usize,
}

impl Stack {
    /// Highest address (exclusive): where the stack pointer starts.
    pub(crate) fn top(&self) -> usize {
        self.guard + page_size() + self.size
    }
    /// Usable bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
    /// The guard page's address range.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.guard, self.guard + page_size())
    }

    /// Gives back pages below the top [`KEEP`] bytes if the goroutine used
    /// them. The page just below the kept region is scanned: any non-zero
    /// word means frames reached it (frames write return addresses), so the
    /// deep part is returned with `MADV_DONTNEED`. An untouched page reads
    /// as the shared zero page and costs no memory.
    pub(crate) fn trim(&self) {
        if self.size <= KEEP + page_size() {
            return;
        }
        let page = page_size();
        let probe = self.top() - KEEP - page;
        // SAFETY: `probe..probe+page` lies inside this stack's usable,
        // readable range (size > KEEP + page), and no goroutine runs on the
        // stack while it is being returned.
        let words = unsafe { std::slice::from_raw_parts(probe as *const u64, page / 8) };
        // Eight independent accumulators so the loop vectorises.
        let mut acc = [0u64; 8];
        for chunk in words.chunks_exact(8) {
            for (a, w) in acc.iter_mut().zip(chunk) {
                *a |= w;
            }
        }
        if acc.iter().fold(0, |x, y| x | y) == 0 {
            return;
        }
        let low = self.guard + page;
        // SAFETY: the range is this stack's own memory below the kept top;
        // nothing lives there once the goroutine has finished, and
        // MADV_DONTNEED on private anonymous memory just zero-fills it.
        unsafe {
            libc::madvise(
                low as *mut libc::c_void,
                self.top() - KEEP - low,
                libc::MADV_DONTNEED,
            );
        }
    }

    /// Gives back every page of the stack (used when a stack goes to the
    /// process-wide pool, where it may sit unused for long).
    pub(crate) fn release_all(&self) {
        let low = self.guard + page_size();
        // SAFETY: as in `trim`, the whole usable range is unused.
        unsafe {
            libc::madvise(low as *mut libc::c_void, self.size, libc::MADV_DONTNEED);
        }
    }
}

// SAFETY: `base` is the top of a mapping of `size` usable bytes, aligned to
// a page (so to STACK_ALIGNMENT); `limit` is the bottom of the guard page,
// which is included as the trait requires; the guard catches overflow.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.top()).expect("stack top is non-null")
    }
    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.guard).expect("stack bottom is non-null")
    }
}

/// Free stacks and the unused tail of the current chunk, for one size.
struct SizeClass {
    size: usize,
    free: Vec<Stack>,
    /// Next stack slot to carve from the current chunk.
    next: usize,
    /// Slots below this address already have their guard page.
    guarded: usize,
    end: usize,
}

/// Guards installed per `process_madvise` call (the kernel's UIO_MAXIOV).
const GUARD_BATCH: usize = 1024;

static POOL: Lock<Vec<SizeClass>> = Lock::new(Vec::new());

/// Takes a stack of `size` usable bytes (already page-rounded) from the
/// pool, carving a new chunk when the pool is empty.
pub(crate) fn alloc(size: usize) -> io::Result<Stack> {
    let mut pool = POOL.lock();
    let idx = match pool.iter().position(|c| c.size == size) {
        Some(i) => i,
        None => {
            pool.push(SizeClass {
                size,
                free: Vec::new(),
                next: 0,
                guarded: 0,
                end: 0,
            });
            pool.len() - 1
        }
    };
    let class = &mut pool[idx];
    if let Some(stack) = class.free.pop() {
        return Ok(stack);
    }
    let stride = size + page_size();
    if class.next + stride > class.end {
        let bytes = CHUNK_BYTES.max(stride * 4) / stride * stride;
        let base = reserve(bytes)?;
        class.next = base;
        class.guarded = base;
        class.end = base + bytes;
    }
    if class.next >= class.guarded {
        let slots = ((class.end - class.next) / stride).min(GUARD_BATCH);
        class.guarded = class.next + stride * install_guards(class.next, stride, slots)?;
    }
    let stack = Stack {
        guard: class.next,
        size,
    };
    class.next += stride;
    Ok(stack)
}

/// Returns a stack to the process-wide pool, giving back all its pages.
pub(crate) fn free(stack: Stack) {
    free_many(vec![stack]);
}

/// Returns many stacks at once (a runtime shutting down): their pages go
/// back in batches of 1024 ranges per `process_madvise` call.
pub(crate) fn free_many(stacks: Vec<Stack>) {
    let page = page_size();
    let ranges: Vec<(usize, usize)> = stacks.iter().map(|s| (s.guard + page, s.size)).collect();
    let released = ranges.len() > 1
        && GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE
        && process_madvise(&ranges, libc::MADV_DONTNEED) == Some(ranges.iter().map(|r| r.1).sum());
    if !released {
        for s in &stacks {
            s.release_all();
        }
    }
    let mut pool = POOL.lock();
    for stack in stacks {
        if let Some(class) = pool.iter_mut().find(|c| c.size == stack.size) {
            class.free.push(stack);
        }
    }
}

fn reserve(bytes: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at a kernel-chosen address has no
    // preconditions; the result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!(
                "gort: cannot reserve {} MiB of address space for goroutine stacks: {err} \
                 (check ulimit -v and vm.max_map_count = {})",
                bytes >> 20,
                max_map_count()
            ),
        ));
    }
    Ok(p as usize)
}

/// `MADV_GUARD_INSTALL` (Linux 6.13, include/uapi/asm-generic/mman-common.h).
const MADV_GUARD_INSTALL: libc::c_int = 102;
const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;
static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

/// How guard pages are installed on this kernel.
#[cfg(test)]
pub(crate) fn guard_mode() -> &'static str {
    match GUARD_MODE.load(Ordering::Relaxed) {
        GUARD_MADVISE => "madvise(MADV_GUARD_INSTALL)",
        GUARD_MPROTECT => "mprotect(PROT_NONE)",
        _ => "not yet decided",
    }
}

/// Installs guard pages at `first`, `first + stride`, ... for up to
/// `slots` stack slots; returns how many slots got one (at least 1). With
/// guard regions, a whole batch costs one `process_madvise` call (one TLB
/// flush); the `mprotect` fallback guards one slot at a time, so that the
/// mapping limit is hit by the spawn that needs it.
fn install_guards(first: usize, stride: usize, slots: usize) -> io::Result<usize> {
    if slots > 1 && GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE {
        if let Some(n) = process_madvise_guards(first, stride, slots) {
            return Ok(n);
        }
    }
    install_guard(first)?;
    Ok(1)
}

/// One `process_madvise(MADV_GUARD_INSTALL)` over many slots; `None` if the
/// kernel does not offer it (then guards go one `madvise` at a time). Also
/// pre-faults each slot's top page (`MADV_POPULATE_WRITE`): every goroutine
/// touches it at once, and one call for a batch is far cheaper than a trap
/// per page.
fn process_madvise_guards(first: usize, stride: usize, slots: usize) -> Option<usize> {
    let page = page_size();
    let guards: Vec<(usize, usize)> = (0..slots).map(|i| (first + i * stride, page)).collect();
    let done = process_madvise(&guards, MADV_GUARD_INSTALL)? / page;
    let tops: Vec<(usize, usize)> = (0..done)
        .map(|i| (first + (i + 1) * stride - page, page))
        .collect();
    let _ = process_madvise(&tops, MADV_POPULATE_WRITE);
    Some(done.max(1))
}

/// `MADV_POPULATE_WRITE` (Linux 5.14).
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// `process_madvise` on our own process over `(addr, len)` ranges inside
/// our stack reservations; returns the bytes advised, `None` if the kernel
/// refused (it then is not tried again for that advice).
fn process_madvise(ranges: &[(usize, usize)], advice: libc::c_int) -> Option<usize> {
    use std::sync::atomic::AtomicU32;
    static UNSUPPORTED: AtomicU32 = AtomicU32::new(0);
    let bit = 1u32 << (advice as u32 % 32);
    if UNSUPPORTED.load(Ordering::Relaxed) & bit != 0 || ranges.is_empty() {
        return None;
    }
    let pidfd = self_pidfd()?;
    let mut total = 0;
    for batch in ranges.chunks(GUARD_BATCH) {
        let iov: Vec<libc::iovec> = batch
            .iter()
            .map(|&(addr, len)| libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            })
            .collect();
        // SAFETY: every range lies inside a stack reservation we own and
        // that no goroutine is using; the kernel only reads the array.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                pidfd,
                iov.as_ptr(),
                iov.len(),
                advice,
                0,
            )
        };
        if rc <= 0 {
            UNSUPPORTED.fetch_or(bit, Ordering::Relaxed);
            return (total > 0).then_some(total);
        }
        total += rc as usize;
    }
    Some(total)
}

/// A pidfd for this process (re-opened after a fork).
fn self_pidfd() -> Option<libc::c_int> {
    static CACHE: Lock<(libc::pid_t, libc::c_int)> = Lock::new((0, -1));
    let mut cache = CACHE.lock();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if cache.0 != pid {
        // SAFETY: pidfd_open takes a pid and flags; the result is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
        if fd < 0 {
            return None;
        }
        *cache = (pid, fd);
    }
    Some(cache.1)
}

fn install_guard(addr: usize) -> io::Result<()> {
    let page = page_size();
    if GUARD_MODE.load(Ordering::Relaxed) == GUARD_UNKNOWN && force_mprotect() {
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: `addr` is the first page of a stack slot inside a live
        // reservation we own; installing a guard there only makes that page
        // fault on access.
        let rc = unsafe { libc::madvise(addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
        if rc == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    mprotect_guard(addr, page)
}

/// `GORT_STACK_GUARD=mprotect` forces the pre-6.13 fallback (for tests,
/// and for kernels where guard regions misbehave).
fn force_mprotect() -> bool {
    std::env::var("GORT_STACK_GUARD").is_ok_and(|v| v == "mprotect")
}

fn mprotect_guard(addr: usize, page: usize) -> io::Result<()> {
    // SAFETY: as above; PROT_NONE on a page we own only makes it fault.
    let rc = unsafe { libc::mprotect(addr as *mut libc::c_void, page, libc::PROT_NONE) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOMEM) {
        return Err(map_limit_error());
    }
    Err(err)
}

/// The error for an exhausted mapping limit; `go` panics with its message.
fn map_limit_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "gort: cannot install a goroutine stack guard page: the process reached the kernel's \
             mapping limit (vm.max_map_count = {}); raise it with `sysctl -w vm.max_map_count=N` \
             or run on Linux 6.13+ where guard pages need no mapping",
            max_map_count()
        ),
    )
}

fn max_map_count() -> String {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_of(addr: usize, len: usize) -> usize {
        let page = page_size();
        let mut vec = vec![0u8; len / page];
        // SAFETY: `addr..addr+len` is a mapped range we own; `vec` has one
        // byte per page as mincore requires.
        let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr()) };
        assert_eq!(rc, 0);
        vec.iter().filter(|b| **b & 1 == 1).count()
    }

    #[test]
    fn sizes_are_validated_and_rounded() {
        let err = validate_size(1024, "stack_size").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("stack_size"), "{err}");
        assert!(err.to_string().contains("16 KiB"), "{err}");
        assert_eq!(validate_size(20_000, "x").unwrap() % page_size(), 0);
        assert!(validate_size(20_000, "x").unwrap() >= 20_000);
    }

    #[test]
    fn stacks_are_distinct_and_guarded() {
        let a = alloc(64 * 1024).unwrap();
        let b = alloc(64 * 1024).unwrap();
        assert_ne!(a.top(), b.top());
        assert_eq!(a.size(), 64 * 1024);
        assert_ne!(guard_mode(), "not yet decided");
        free(a);
        free(b);
    }

    #[test]
    fn trim_gives_back_deep_pages_only_when_touched() {
        let s = alloc(128 * 1024).unwrap();
        let low = s.top() - s.size();
        // Touch only the top page: nothing to give back.
        // SAFETY: inside the stack's usable range, no goroutine uses it.
        unsafe { *((s.top() - 8) as *mut u64) = 7 };
        s.trim();
        assert_eq!(rss_of(s.top() - page_size(), page_size()), 1);
        // Touch the whole stack with non-zero data, then trim.
        // SAFETY: as above.
        unsafe { std::ptr::write_bytes(low as *mut u8, 0xAB, s.size()) };
        assert_eq!(rss_of(low, s.size()), s.size() / page_size());
        s.trim();
        let kept = rss_of(low, s.size());
        assert!(kept <= KEEP / page_size(), "kept {kept} pages");
        free(s);
    }
}
