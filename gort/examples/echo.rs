//! A TCP echo server with one goroutine per connection, the way Go writes it:
//!
//! ```go
//! ln, err := net.Listen("tcp", addr)
//! for {
//!     conn, err := ln.Accept()
//!     if err != nil {
//!         log.Print(err)
//!         time.Sleep(50 * time.Millisecond)
//!         continue
//!     }
//!     go func() {
//!         defer conn.Close()
//!         io.Copy(conn, conn)
//!     }()
//! }
//! ```
//!
//! Each connection is served by plain blocking code, `std::io::copy` from the
//! stream into itself (`&TcpStream` is both `Read` and `Write`), on its own
//! goroutine. A goroutine waiting for bytes is parked on gort's netpoller,
//! not blocking an OS thread, so ten thousand idle connections cost ten
//! thousand small goroutine stacks while only `GOMAXPROCS` threads run them.
//!
//! An accept error (for example `EMFILE`: too many open files) is logged and
//! the server sleeps a little with `gort::time::sleep`, then accepts again,
//! instead of exiting or spinning.
//!
//! Run it (the address is optional, 127.0.0.1:7000 by default):
//!
//! ```text
//! cargo run --release -p gort --example echo -- 127.0.0.1:7000
//! ```
//!
//! and talk to it from another terminal: `nc 127.0.0.1 7000` sends back every
//! line you type. `bench/run.py --only tcp_echo` measures the same server
//! shape (`bench_gort echo_server`) against Go, Tokio and threads.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use gort::net::{TcpListener, TcpStream};

/// Pause after a failed `accept` before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

#[gort::main]
fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let listener = TcpListener::bind(addr.as_str())?;
    println!("echo: listening on {}", listener.local_addr()?);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                gort::go(move || serve(stream, peer));
            }
            Err(e) => {
                eprintln!("echo: accept: {e}");
                gort::time::sleep(ACCEPT_RETRY);
            }
        }
    }
}

/// Echoes everything `peer` sends until it closes its side; the stream is
/// closed when it is dropped at the end.
fn serve(stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    if let Err(e) = io::copy(&mut &stream, &mut &stream) {
        eprintln!("echo: {peer}: {e}");
    }
}
