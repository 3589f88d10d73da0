//! TCP: [`TcpListener`] and [`TcpStream`], std's shapes on the netpoller.

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::each_addr;
use super::fd::{self, Fd};

/// A TCP socket server, listening for connections (std's
/// [`TcpListener`](std::net::TcpListener), parking the goroutine in
/// `accept`).
///
/// ```
/// use std::io::{Read, Write};
/// gort::run(|| {
///     let listener = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = gort::go(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         s.read_exact(&mut buf).unwrap();
///         s.write_all(&buf).unwrap(); // echo
///     });
///     let mut c = gort::net::TcpStream::connect(addr).unwrap();
///     c.write_all(b"hello").unwrap();
///     let mut buf = [0; 5];
///     c.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    fd: Fd<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works) and listens.
    ///
    /// The accept backlog is the system's maximum
    /// (`/proc/sys/net/core/somaxconn`), as Go's `net.Listen` uses, rather
    /// than std's 128: a goroutine-per-connection server is expected to
    /// take bursts of thousands of connections.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let sock = socket2::Socket::new(
                socket2::Domain::for_address(a),
                socket2::Type::STREAM.nonblocking().cloexec(),
                Some(socket2::Protocol::TCP),
            )?;
            sock.set_reuse_address(true)?;
            sock.bind(&a.into())?;
            sock.listen(super::backlog())?;
            Ok(TcpListener {
                fd: Fd::new(std::net::TcpListener::from(sock))?,
            })
        })
    }

    /// Takes over a std listener (made non-blocking and registered).
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        Ok(TcpListener { fd: Fd::new(l)? })
    }

    /// Accepts a connection, parking until one arrives. Errors such as
    /// `EMFILE` (out of file descriptors) come back as they are; the
    /// listener stays usable.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.fd.read(|l| l.accept())?;
        Ok((TcpStream::from_std(s)?, a))
    }

    /// An endless iterator over accepted connections (each an
    /// `io::Result`, as std's).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().local_addr()
    }

    /// A new handle to the same socket (its own registration).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        // A dup shares the file description, non-blocking mode included.
        Ok(TcpListener {
            fd: self.fd.clone_with(self.fd.get().try_clone()?)?,
        })
    }

    /// Sets IP_TTL.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.get().set_ttl(ttl)
    }

    /// IP_TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.get().ttl()
    }

    /// Takes SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.get().take_error()
    }
}

/// The iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    #[track_caller]
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection (std's [`TcpStream`](std::net::TcpStream)): reads and
/// writes park the goroutine until the socket is ready. Implements
/// [`Read`] and [`Write`], also for `&TcpStream`, so one goroutine can read
/// while another writes.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// gort::run(|| {
///     let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     gort::go(move || {
///         let (s, _) = l.accept().unwrap();
///         for line in BufReader::new(&s).lines() {
///             writeln!(&s, "{}", line.unwrap().to_uppercase()).unwrap();
///         }
///     });
///     let s = gort::net::TcpStream::connect(addr).unwrap();
///     writeln!(&s, "hi").unwrap();
///     let mut line = String::new();
///     BufReader::new(&s).read_line(&mut line).unwrap();
///     assert_eq!(line, "HI\n");
/// });
/// ```
pub struct TcpStream {
    fd: Fd<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` (each of its addresses in turn), parking until
    /// the connection is established.
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_deadline(&a, None))
    }

    /// Connects with a timeout (std's `connect_timeout`): a zero timeout
    /// is an `InvalidInput` error, running out of time a `TimedOut` one.
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_deadline(addr, Some(Instant::now() + timeout))
    }

    fn connect_deadline(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let fd = fd::connect(
            socket2::Domain::for_address(*addr),
            Some(socket2::Protocol::TCP),
            &(*addr).into(),
            deadline,
        )?;
        Ok(TcpStream {
            fd: fd.map(std::net::TcpStream::from),
        })
    }

    /// Takes over a std stream (made non-blocking and registered).
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        Ok(TcpStream { fd: Fd::new(s)? })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().local_addr()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.get().shutdown(how)
    }

    /// A new handle to the same connection (its own registration and
    /// timeouts).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        // A dup shares the file description, non-blocking mode included.
        Ok(TcpStream {
            fd: self.fd.clone_with(self.fd.get().try_clone()?)?,
        })
    }

    /// Reads without consuming, parking until data arrives.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(|s| s.peek(buf))
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.fd.get().set_nodelay(nodelay)
    }

    /// TCP_NODELAY.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.fd.get().nodelay()
    }

    /// Sets IP_TTL.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.get().set_ttl(ttl)
    }

    /// IP_TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.get().ttl()
    }

    /// Takes SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.get().take_error()
    }
}

super::socket_impls!(TcpListener, std::net::TcpListener);

super::timeouts!(TcpStream);
super::socket_impls!(TcpStream, std::net::TcpStream);
super::stream_io!(TcpStream);
