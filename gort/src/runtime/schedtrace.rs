//! `GORT_SCHEDTRACE=ms`: Go's `schedtrace` line on stderr every `ms`
//! milliseconds, written by each runtime's sysmon:
//!
//! ```text
//! SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 idlethreads=2 runqueue=0 [0 0]
//! ```
//!
//! (time since the runtime started, its procs, idle procs, threads,
//! spinning and idle threads, the global queue's length, then each P's
//! queue). A value that is not a positive whole number of milliseconds is
//! reported once, naming the variable, and tracing stays off.

use std::sync::OnceLock;
use std::time::Duration;

use super::sched::Sched;

/// The period, if tracing is on (read once per process).
pub(crate) fn period() -> Option<Duration> {
    static PERIOD: OnceLock<Option<Duration>> = OnceLock::new();
    *PERIOD.get_or_init(|| parse(std::env::var_os("GORT_SCHEDTRACE")?.to_str()))
}

fn parse(v: Option<&str>) -> Option<Duration> {
    let v = match v {
        Some(v) => v.trim(),
        None => {
            eprintln!("gort: GORT_SCHEDTRACE is not valid UTF-8; scheduler tracing is off");
            return None;
        }
    };
    match v.parse::<u64>() {
        Ok(0) => None, // Go: 0 means off
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => {
            eprintln!(
                "gort: GORT_SCHEDTRACE={v:?} is not a period in milliseconds \
                 (e.g. GORT_SCHEDTRACE=1000); scheduler tracing is off"
            );
            None
        }
    }
}

/// The line for `sched` now.
pub(crate) fn line(sched: &Sched) -> String {
    let s = sched.stats();
    let queues: Vec<String> = s.local_queues.iter().map(usize::to_string).collect();
    format!(
        "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={} [{}]",
        sched.started_at.elapsed().as_millis(),
        s.procs,
        s.idle_procs,
        s.threads,
        s.spinning_threads,
        s.idle_threads,
        s.global_queue,
        queues.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_bad_values_turn_tracing_off() {
        assert_eq!(parse(Some("250")), Some(Duration::from_millis(250)));
        assert_eq!(parse(Some(" 10 ")), Some(Duration::from_millis(10)));
        assert_eq!(parse(Some("0")), None);
        assert_eq!(parse(Some("abc")), None);
        assert_eq!(parse(Some("-5")), None);
        assert_eq!(parse(Some("1.5")), None);
    }
}
