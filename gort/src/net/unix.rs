//! Unix domain sockets: [`UnixListener`] and [`UnixStream`], std's shapes
//! on the netpoller.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self as unet, SocketAddr};
use std::path::Path;

use super::fd::{self, Fd};

/// A Unix domain socket server (std's
/// [`UnixListener`](std::os::unix::net::UnixListener)).
///
/// ```
/// use std::io::{Read, Write};
/// let dir = std::env::temp_dir().join(format!("gort-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("sock");
/// let _ = std::fs::remove_file(&path);
/// gort::run(move || {
///     let l = gort::net::UnixListener::bind(&path).unwrap();
///     let p = path.clone();
///     gort::go(move || {
///         let mut c = gort::net::UnixStream::connect(&p).unwrap();
///         c.write_all(b"hi").unwrap();
///     });
///     let (mut s, _) = l.accept().unwrap();
///     let mut got = String::new();
///     s.read_to_string(&mut got).unwrap();
///     assert_eq!(got, "hi");
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct UnixListener {
    fd: Fd<unet::UnixListener>,
}

impl UnixListener {
    /// Binds to the socket file `path` and listens.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(unet::UnixListener::bind(path)?)
    }

    /// Takes over a std listener (made non-blocking and registered).
    pub fn from_std(l: unet::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        Ok(UnixListener { fd: Fd::new(l)? })
    }

    /// Accepts a connection, parking until one arrives.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.fd.read(|l| l.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().local_addr()
    }

    /// A new handle to the same socket (its own registration).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        // A dup shares the file description, non-blocking mode included.
        Ok(UnixListener {
            fd: self.fd.clone_with(self.fd.get().try_clone()?)?,
        })
    }

    /// Takes SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.get().take_error()
    }
}

/// The iterator of [`UnixListener::incoming`].
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    #[track_caller]
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A Unix domain stream (std's
/// [`UnixStream`](std::os::unix::net::UnixStream)); `Read`/`Write` also
/// for `&UnixStream`.
///
/// ```
/// use std::io::{Read, Write};
/// gort::run(|| {
///     let (a, mut b) = gort::net::UnixStream::pair().unwrap();
///     gort::go(move || (&a).write_all(b"pong").unwrap());
///     let mut buf = [0; 4];
///     b.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"pong");
/// });
/// ```
pub struct UnixStream {
    fd: Fd<unet::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file `path`.
    #[track_caller]
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let addr = socket2::SockAddr::unix(path)?;
        let fd = fd::connect(socket2::Domain::UNIX, None, &addr, None)?;
        Ok(UnixStream {
            fd: fd.map(unet::UnixStream::from),
        })
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unet::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Takes over a std stream (made non-blocking and registered).
    pub fn from_std(s: unet::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        Ok(UnixStream { fd: Fd::new(s)? })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().peer_addr()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.get().shutdown(how)
    }

    /// A new handle to the same stream (its own registration and
    /// timeouts).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        // A dup shares the file description, non-blocking mode included.
        Ok(UnixStream {
            fd: self.fd.clone_with(self.fd.get().try_clone()?)?,
        })
    }

    /// Takes SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.get().take_error()
    }
}

super::socket_impls!(UnixListener, unet::UnixListener);

super::timeouts!(UnixStream);
super::socket_impls!(UnixStream, unet::UnixStream);
super::stream_io!(UnixStream);
