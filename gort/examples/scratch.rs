use std::io::{Read, Write};
use std::time::Duration;
fn main() {
    let rt = gort::runtime::Builder::new().procs(2).build().unwrap();
    rt.run(|| {
        let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        gort::go(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                gort::go(move || {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => s.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let n = 1000;
        let hs: Vec<_> = (0..n)
            .map(|i| {
                gort::go(move || {
                    let mut c = gort::net::TcpStream::connect(addr).unwrap();
                    let mut total = 0;
                    for r in 0..10u32 {
                        let msg = format!("{i}-{r}-xxxxxxxxxxxxxxxxxxxxxxxxxxxx");
                        c.write_all(msg.as_bytes()).unwrap();
                        let mut buf = vec![0u8; msg.len()];
                        c.read_exact(&mut buf).unwrap();
                        assert_eq!(buf, msg.as_bytes());
                        total += buf.len();
                    }
                    total
                })
            })
            .collect();
        let t: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        println!("echoed {t} bytes");
        // plain thread client
        let t = std::thread::spawn(move || {
            let mut c = gort::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"thread").unwrap();
            let mut b = [0; 6];
            c.read_exact(&mut b).unwrap();
            b
        });
        println!(
            "thread got {:?}",
            std::str::from_utf8(&t.join().unwrap()).unwrap()
        );
        // timeout
        let (a, _b) = gort::net::UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let e = (&a).read(&mut [0u8; 4]).unwrap_err();
        println!("timeout kind {:?}", e.kind());
        let e = gort::net::TcpStream::connect_timeout(
            &"10.255.255.1:80".parse().unwrap(),
            Duration::from_millis(100),
        )
        .unwrap_err();
        println!("connect timeout kind {:?}", e.kind());
    });
    println!("ok");
}
