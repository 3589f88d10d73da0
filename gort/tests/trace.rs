//! `GORT_TRACE=path.json`: the trace of a child process running a small
//! pipeline of named goroutines, parsed and checked event by event.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{child, is_child, text};
use serde_json::Value;

/// A pipeline: "producer" -> two "worker"s -> "sink", over unbuffered
/// channels, then a `blocking` call long enough for sysmon to retake its P.
fn pipeline() {
    let (tx, rx) = gort::chan::bounded::<u64>(0);
    let (out_tx, out_rx) = gort::chan::bounded::<u64>(0);
    let producer = gort::Builder::new()
        .name("producer")
        .spawn(move || {
            for i in 0..200 {
                tx.send(i).unwrap();
            }
        })
        .unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (rx, out_tx) = (rx.clone(), out_tx.clone());
            gort::Builder::new()
                .name("worker")
                .spawn(move || {
                    for v in &rx {
                        out_tx.send(v * 2).unwrap();
                    }
                })
                .unwrap()
        })
        .collect();
    drop(out_tx);
    let sink = gort::Builder::new()
        .name("sink")
        .spawn(move || out_rx.iter().sum::<u64>())
        .unwrap();
    producer.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(sink.join().unwrap(), 2 * (0..200).sum::<u64>());
    // A join that certainly parks: the joined goroutine finishes only once
    // main is seen waiting in the join (the joins above may all find their
    // goroutines finished on a busy machine).
    let (go_tx, go_rx) = gort::chan::bounded::<()>(0);
    let late = gort::Builder::new()
        .name("late")
        .spawn(move || go_rx.recv().unwrap())
        .unwrap();
    gort::go(move || {
        let main_joins = || {
            gort::debug::goroutines()
                .iter()
                .any(|g| g.name.as_deref() == Some("main") && g.wait_reason == Some("join"))
        };
        while !main_joins() {
            gort::time::sleep(Duration::from_millis(1));
        }
        go_tx.send(()).unwrap();
    });
    late.join().unwrap();
    // A call that holds its thread: sysmon hands its P on.
    let before = gort::debug::stats().handoffs;
    while gort::debug::stats().handoffs == before {
        gort::blocking(|| std::thread::sleep(Duration::from_millis(15)));
    }
}

fn temp_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gort-trace-{}-{what}.json", std::process::id()))
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

#[test]
fn trace_has_tracks_slices_parks_and_readies() {
    let name = "trace_has_tracks_slices_parks_and_readies";
    if is_child(name) {
        // The default runtime, as `#[gort::main]` uses: never dropped, so
        // the trace is written by the exit hook.
        gort::run(pipeline);
        return;
    }
    let path = temp_path("ok");
    let out = child(name, &[("GORT_TRACE", path.to_str().unwrap())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let doc: Value = serde_json::from_str(&json).expect("the trace is valid JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents array");
    assert!(!events.is_empty());

    // Every event is well-formed Trace Event format.
    for e in events {
        let ph = s(e, "ph");
        assert!(["M", "B", "E", "i"].contains(&ph.as_str()), "{e}");
        assert!(e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
        assert!(!s(e, "name").is_empty(), "{e}");
        if ph != "M" {
            assert!(e["ts"].is_number(), "{e}");
        }
        if ph == "i" {
            assert_eq!(s(e, "s"), "t", "{e}");
        }
    }

    // Tracks: Ms named gort-<rt>-m<n>, and sysmon.
    let mut track_names = HashMap::new();
    for e in events.iter().filter(|e| s(e, "name") == "thread_name") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        track_names.insert(key, s(&e["args"], "name"));
    }
    let ms: Vec<_> = track_names
        .iter()
        .filter(|((pid, tid), n)| **n == format!("gort-{pid}-m{tid}"))
        .collect();
    assert!(!ms.is_empty(), "{track_names:?}");
    assert!(
        track_names.values().any(|n| n.ends_with("-sysmon")),
        "{track_names:?}"
    );

    // Run slices for the named goroutines, named by id and name.
    let mut ids: HashMap<String, Vec<u64>> = HashMap::new();
    for e in events.iter().filter(|e| s(e, "ph") == "B") {
        let g = e["args"]["g"]
            .as_u64()
            .expect("a slice has its goroutine's id");
        let gname = s(&e["args"], "name");
        if !gname.is_empty() {
            assert_eq!(s(e, "name"), format!("g{g} {gname}"), "{e}");
            ids.entry(gname).or_default().push(g);
        } else {
            assert_eq!(s(e, "name"), format!("g{g}"), "{e}");
        }
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        assert!(
            track_names.contains_key(&key),
            "a slice on an unnamed track: {e}"
        );
    }
    for n in ["producer", "worker", "sink", "main"] {
        assert!(ids.contains_key(n), "no run slice of {n}: {:?}", ids.keys());
    }
    let named = |g: u64| ids.values().any(|v| v.contains(&g));

    // Parks with Go's wait reasons at this file's lines.
    let parks: Vec<&Value> = events.iter().filter(|e| s(e, "name") == "park").collect();
    for reason in ["chan receive", "chan send", "join"] {
        assert!(
            parks.iter().any(|e| s(&e["args"], "reason") == reason
                && s(&e["args"], "at").starts_with("gort/tests/trace.rs:")
                && named(e["args"]["g"].as_u64().unwrap())),
            "no park for {reason:?} at a line of gort/tests/trace.rs"
        );
    }

    // Readies: which goroutine readied which.
    assert!(
        events.iter().any(|e| s(e, "name") == "ready"
            && e["args"]["by"].as_u64().is_some_and(named)
            && e["args"]["g"].as_u64().is_some_and(named)),
        "no ready of a named goroutine by another"
    );

    // sysmon took the `blocking` call's P; the P was handed off.
    assert!(
        events
            .iter()
            .any(|e| s(e, "name") == "retake" && s(&e["args"], "why") == "blocking"),
        "no retake of the blocking call"
    );
    assert!(events.iter().any(|e| s(e, "name") == "handoff"));

    // Per track: timestamps never go back, slices never overlap.
    let mut last: HashMap<(u64, u64), f64> = HashMap::new();
    let mut open: HashMap<(u64, u64), String> = HashMap::new();
    for e in events.iter().filter(|e| s(e, "ph") != "M") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let ts = e["ts"].as_f64().unwrap();
        let prev = last.insert(key, ts).unwrap_or(0.0);
        assert!(
            ts >= prev,
            "time went back on track {key:?}: {prev} then {e}"
        );
        match s(e, "ph").as_str() {
            "B" => {
                if let Some(o) = open.insert(key, s(e, "name")) {
                    panic!("slice {e} begins inside {o} on track {key:?}");
                }
            }
            "E" => {
                let o = open.remove(&key);
                assert_eq!(o.as_deref(), Some(s(e, "name").as_str()), "{e}");
            }
            _ => {}
        }
    }
}

#[test]
fn unwritable_trace_path_is_one_line_and_the_program_runs_on() {
    let name = "unwritable_trace_path_is_one_line_and_the_program_runs_on";
    if is_child(name) {
        let n = common::rt(2).run(|| gort::go(|| 6 * 7).join().unwrap());
        println!("RESULT {n}");
        return;
    }
    let out = child(name, &[("GORT_TRACE", "/nonexistent-gort-dir/trace.json")]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(text(&out.stdout).contains("RESULT 42"));
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("GORT_TRACE")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("gort: GORT_TRACE=/nonexistent-gort-dir/trace.json: cannot create"),
        "{err}"
    );
}

#[test]
fn a_trace_that_cannot_be_written_says_how_many_events_were_lost() {
    let name = "a_trace_that_cannot_be_written_says_how_many_events_were_lost";
    if is_child(name) {
        // Files of this process may not grow past 1 KiB: the header fits,
        // the events do not (EFBIG rather than SIGXFSZ).
        // SAFETY: plain libc calls on this process's own settings.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: libc::RLIM_INFINITY,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        common::rt(2).run(|| {
            for _ in 0..100 {
                let (tx, rx) = gort::chan::bounded::<u8>(0);
                let h = gort::go(move || rx.recv().unwrap());
                tx.send(1).unwrap();
                h.join().unwrap();
            }
        });
        println!("RESULT ok");
        return;
    }
    let path = temp_path("lost");
    let out = child(name, &[("GORT_TRACE", path.to_str().unwrap())]);
    let err = text(&out.stderr);
    let json = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{err}");
    assert!(text(&out.stdout).contains("RESULT ok"));
    let line = err
        .lines()
        .find(|l| l.contains("trace events could not be written"))
        .unwrap_or_else(|| panic!("no lost-events line: {err}"));
    assert!(line.starts_with("gort: GORT_TRACE="), "{line}");
    let n: u64 = line
        .split(": ")
        .nth(2)
        .and_then(|w| w.split(' ').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert!(n > 0, "{line}");
    // What was written is still a well-formed trace.
    let doc: Value = serde_json::from_str(&json).expect("the partial trace is valid JSON");
    assert!(doc["traceEvents"].is_array());
}
