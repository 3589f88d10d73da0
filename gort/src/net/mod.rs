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

mod fd;
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
