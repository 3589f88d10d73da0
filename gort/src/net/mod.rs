//! Networking: TCP, UDP and Unix domain sockets for goroutines.
//!
//! The types have std's names, methods and signatures, so they drop into
//! code written for `std::net`, and every library written against
//! [`std::io::Read`]/[`std::io::Write`] works with them. Underneath, each
//! socket is non-blocking and registered with its runtime's netpoller
//! (`runtime/netpoll.rs`, epoll through mio): a call that would block parks
//! the goroutine, and its thread runs other goroutines until the socket is
//! ready. Called from a plain OS thread (not a goroutine), the same calls
//! block that thread. Timeouts (`set_read_timeout`, `connect_timeout`)
//! behave as std's: a timed-out read or write fails with
//! [`WouldBlock`](std::io::ErrorKind::WouldBlock), a timed-out connect with
//! [`TimedOut`](std::io::ErrorKind::TimedOut). Errors from the operating
//! system (`ECONNRESET`, `EMFILE`, ...) come back as `io::Error`.
//!
//! A socket registers with the runtime of the goroutine that creates it
//! (the default runtime when a plain thread creates it) and should be used
//! while that runtime is alive.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! # fn main() -> std::io::Result<()> {
//! gort::run(|| -> std::io::Result<()> {
//!     let listener = gort::net::TcpListener::bind("127.0.0.1:7000")?;
//!     for conn in listener.incoming() {
//!         let mut conn = conn?;
//!         gort::go(move || {
//!             let mut buf = [0; 4096];
//!             while let Ok(n @ 1..) = conn.read(&mut buf) {
//!                 if conn.write_all(&buf[..n]).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//!     Ok(())
//! })
//! # }
//! ```

/// The trait impls every gort socket has: `Debug` (as its std socket's),
/// `AsRawFd`, `AsFd`, and `TryFrom` its std type (through `from_std`).
macro_rules! socket_impls {
    ($t:ident, $std:ty) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.fd.get(), f)
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.fd)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.fd)
            }
        }

        impl TryFrom<$std> for $t {
            type Error = std::io::Error;
            fn try_from(s: $std) -> std::io::Result<$t> {
                $t::from_std(s)
            }
        }
    };
}
pub(crate) use socket_impls;

/// `Read` for a stream and for shared references to it (one goroutine may
/// read while another writes, as with std's streams). Also used by
/// `process`'s child pipes.
macro_rules! stream_read {
    ($t:ident) => {
        impl std::io::Read for &$t {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.fd.read(|mut s| std::io::Read::read(&mut s, buf))
            }
            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.fd
                    .read(|mut s| std::io::Read::read_vectored(&mut s, bufs))
            }
        }

        impl std::io::Read for $t {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }
            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }
    };
}
pub(crate) use stream_read;

/// `Write` for a stream and for shared references to it.
macro_rules! stream_write {
    ($t:ident) => {
        impl std::io::Write for &$t {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.fd.write(|mut s| std::io::Write::write(&mut s, buf))
            }
            #[track_caller]
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.fd
                    .write(|mut s| std::io::Write::write_vectored(&mut s, bufs))
            }
            #[track_caller]
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for $t {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }
            #[track_caller]
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }
            #[track_caller]
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(crate) use stream_write;

/// `Read` and `Write` for a stream and for shared references to it.
macro_rules! stream_io {
    ($t:ident) => {
        crate::net::stream_read!($t);
        crate::net::stream_write!($t);
    };
}
pub(crate) use stream_io;

/// The timeout settings of a socket: per socket, as std's, applied to
/// each later operation as a deadline (`fd.rs`).
macro_rules! timeouts {
    ($t:ident) => {
        impl $t {
            /// Sets the read timeout: a read (or receive) that waits longer
            /// fails with `WouldBlock`, std's kind on Unix. `Some(0)` is an
            /// `InvalidInput` error; `None` waits forever.
            pub fn set_read_timeout(&self, d: Option<std::time::Duration>) -> std::io::Result<()> {
                self.fd.set_timeout(crate::runtime::netpoll::Dir::Read, d)
            }

            /// Sets the write timeout (as [`set_read_timeout`](Self::set_read_timeout)).
            pub fn set_write_timeout(&self, d: Option<std::time::Duration>) -> std::io::Result<()> {
                self.fd.set_timeout(crate::runtime::netpoll::Dir::Write, d)
            }

            /// The read timeout.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.fd.timeout(crate::runtime::netpoll::Dir::Read))
            }

            /// The write timeout.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.fd.timeout(crate::runtime::netpoll::Dir::Write))
            }
        }
    };
}
pub(crate) use timeouts;

pub(crate) mod fd;
mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixIncoming, UnixListener, UnixStream};

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// The listen backlog: the kernel's maximum, as Go reads it (std uses 128).
fn backlog() -> i32 {
    static BACKLOG: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(4096)
    })
}

/// Resolves `addr` (a blocking call: DNS) and returns its first address.
fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    crate::blocking(|| addr.to_socket_addrs())?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

/// Tries `f` on each address `addr` resolves to; the last error if none
/// works (std's `each_addr`).
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    // Name resolution (getaddrinfo) may block: hand the P on if it does.
    for a in crate::blocking(|| addr.to_socket_addrs())? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
