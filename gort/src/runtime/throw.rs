//! `throw`: a broken internal invariant ends the process, naming it (Go's
//! `throw`, DESIGN.md rule 6). The OS refusing something is never a throw;
//! that is an error at the call that needed it.

/// Aborts the process with `gort: fatal error: <what>`. Writes straight to
/// file descriptor 2 (no lock, no allocation), so it works wherever an
/// invariant can break: with scheduler locks held, or in a signal handler.
#[cold]
#[inline(never)]
pub(crate) fn throw(what: &str) -> ! {
    for part in [b"gort: fatal error: ".as_slice(), what.as_bytes(), b"\n"] {
        // SAFETY: write(2) reads `part.len()` bytes from a live slice.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    std::process::abort();
}
