//! UDP: [`UdpSocket`], std's shape on the netpoller.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use super::fd::Fd;
use super::{each_addr, first_addr};

/// A UDP socket (std's [`UdpSocket`](std::net::UdpSocket)); receiving
/// parks the goroutine until a datagram arrives.
///
/// ```
/// gort::run(|| {
///     let a = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     let to = b.local_addr().unwrap();
///     gort::go(move || a.send_to(b"ping", to).unwrap());
///     let mut buf = [0; 16];
///     let (n, _from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"ping");
/// });
/// ```
pub struct UdpSocket {
    fd: Fd<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that works).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| UdpSocket::from_std(std::net::UdpSocket::bind(a)?))
    }

    /// Takes over a std socket (made non-blocking and registered).
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket { fd: Fd::new(s)? })
    }

    /// Receives one datagram and its sender, parking until one arrives.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.read(|s| s.recv_from(buf))
    }

    /// As [`recv_from`](Self::recv_from), leaving the datagram queued.
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.read(|s| s.peek_from(buf))
    }

    /// Sends a datagram to `addr` (its first address).
    #[track_caller]
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = first_addr(addr)?;
        self.fd.write(|s| s.send_to(buf, to))
    }

    /// Sets the peer for [`send`](Self::send) and [`recv`](Self::recv)
    /// and filters what is received to it.
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        self.fd.get().connect(addr)
    }

    /// Sends to the connected peer.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(|s| s.send(buf))
    }

    /// Receives from the connected peer, parking until a datagram arrives.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(|s| s.recv(buf))
    }

    /// As [`recv`](Self::recv), leaving the datagram queued.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(|s| s.peek(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get().peer_addr()
    }

    /// A new handle to the same socket (its own registration, the same
    /// timeouts).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        // A dup shares the file description, non-blocking mode included.
        Ok(UdpSocket {
            fd: self.fd.clone_with(self.fd.get().try_clone()?)?,
        })
    }

    /// Sets SO_BROADCAST.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.fd.get().set_broadcast(on)
    }

    /// SO_BROADCAST.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.fd.get().broadcast()
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

super::timeouts!(UdpSocket);
super::socket_impls!(UdpSocket, std::net::UdpSocket);
