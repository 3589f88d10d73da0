//! The seed's example of why the scheduler matters: one goroutine reads a
//! large file from the disk while the others keep serving.
//!
//! On ONE processor, a "reader" goroutine reads a 256 MiB file (then
//! writes a copy and fsyncs it) with `gort::fs`; meanwhile "server"
//! goroutines answer requests on a channel. Each `gort::fs` call that stays
//! in the kernel past ~20 µs hands the processor to another thread, so the
//! servers go on answering: the program prints how many requests they
//! served during each file call.
//!
//! ```sh
//! cargo run --release -p gort --example files            # 256 MiB
//! cargo run --release -p gort --example files -- 1024    # size in MiB
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("size in MiB"))
        .unwrap_or(256);
    let dir = std::env::temp_dir().join(format!("gort-example-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big");
    {
        let mut f = std::fs::File::create(&big).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| i as u8).collect();
        for _ in 0..mib {
            f.write_all(&chunk).unwrap();
        }
    }
    println!("wrote {mib} MiB to {}", big.display());

    let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
    let copy = dir.join("copy");
    rt.run(move || {
        let served = Arc::new(AtomicU64::new(0));
        let (req_tx, req_rx) = gort::chan::bounded::<gort::chan::Sender<u64>>(0);
        // Four servers answer requests...
        for _ in 0..4 {
            let (rx, served) = (req_rx.clone(), served.clone());
            gort::go(move || {
                while let Ok(reply) = rx.recv() {
                    let _ = reply.send(served.fetch_add(1, Ordering::Relaxed));
                }
            });
        }
        // ...from a client that keeps asking, a request every 100 µs.
        let client = gort::go(move || {
            let (tx, rx) = gort::chan::bounded(1);
            while req_tx.send(tx.clone()).is_ok() {
                if rx.recv().is_err() {
                    break;
                }
                gort::time::sleep(Duration::from_micros(100));
            }
        });

        // The reader, on the same single processor.
        let served_during = |what: &str, f: &mut dyn FnMut() -> String| {
            let (n0, t0) = (served.load(Ordering::Relaxed), Instant::now());
            let detail = f();
            let n = served.load(Ordering::Relaxed) - n0;
            println!(
                "{what:<28} {detail:<16} took {:>8.1?}; servers answered {n} requests meanwhile",
                t0.elapsed()
            );
        };
        let mut data = Vec::new();
        served_during("gort::fs::read", &mut || {
            data = gort::fs::read(&big).unwrap();
            format!("{} MiB", data.len() >> 20)
        });
        served_during("gort::fs::write", &mut || {
            gort::fs::write(&copy, &data).unwrap();
            format!("{} MiB", data.len() >> 20)
        });
        served_during("File::sync_all (fsync)", &mut || {
            gort::fs::File::open(&copy).unwrap().sync_all().unwrap();
            "copy".into()
        });
        served_during("std::fs::read (hog rule)", &mut || {
            // For contrast: std's call holds the processor until sysmon
            // takes it from the "hog" (after 10 ms or more).
            let v = std::fs::read(&big).unwrap();
            format!("{} MiB", v.len() >> 20)
        });
        drop(client); // the client and servers end with the runtime
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
