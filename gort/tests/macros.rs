//! Integration tests for `#[gort::test]` and `#[gort::main]`.

use std::error::Error;
use std::process::Command;
use std::time::Duration;

/// Set in the environment of the child test processes that run the fixtures
/// below; without it the fixtures pass, so `--include-ignored` stays green.
const FIXTURE_ENV: &str = "GORT_MACROS_FIXTURE";

fn fixture_mode() -> bool {
    std::env::var_os(FIXTURE_ENV).is_some()
}

#[gort::test]
fn body_runs_in_a_goroutine() {
    assert!(gort::num_goroutines() >= 1);
    let h = gort::go(|| 7);
    assert_eq!(h.join().unwrap(), 7);
    // Blocking calls park the main goroutine while the others run.
    let wg = gort::sync::WaitGroup::new();
    let h = wg.go(|| {
        gort::time::sleep(Duration::from_millis(5));
        "ping"
    });
    wg.wait();
    assert_eq!(h.join().unwrap(), "ping");
}

#[gort::test]
fn each_test_gets_its_own_runtime() {
    // Tests run in parallel; in a shared runtime other tests' goroutines
    // would show up here.
    let base = gort::num_goroutines();
    assert!(base >= 1);
    let gate = gort::sync::WaitGroup::new();
    gate.add(1);
    let parked: Vec<_> = (0..10)
        .map(|_| {
            let gate = gate.clone();
            gort::go(move || gate.wait())
        })
        .collect();
    assert_eq!(gort::num_goroutines(), base + 10);
    gate.done(); // opens the gate: every waiter wakes
    for h in parked {
        h.join().unwrap();
    }
    // A joined goroutine is counted out just after its result is handed over.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gort::num_goroutines() != base && std::time::Instant::now() < deadline {
        gort::time::sleep(Duration::from_millis(1));
    }
    assert_eq!(gort::num_goroutines(), base);
}

#[gort::test(procs = 1)]
fn procs_option_1() {
    assert_eq!(gort::procs(), 1);
    // Goroutines spawned from the test use the same runtime.
    assert_eq!(gort::go(gort::procs).join().unwrap(), 1);
}

#[gort::test(procs = 3)]
fn procs_option_3() {
    assert_eq!(gort::procs(), 3);
    assert_eq!(gort::go(gort::procs).join().unwrap(), 3);
}

#[inline(never)]
fn use_stack(depth: usize) -> u64 {
    let buf = std::hint::black_box([depth as u8; 16 * 1024]);
    if depth == 0 {
        buf[0] as u64
    } else {
        buf[buf.len() - 1] as u64 + use_stack(depth - 1)
    }
}

// About 1 MiB of stack: four times the default 256 KiB.
#[gort::test(stack_size = 8388608, procs = 2)]
fn stack_size_option() {
    assert_eq!(gort::procs(), 2);
    assert_eq!(use_stack(64), (1..=64).sum::<u64>());
    let h = gort::go(|| use_stack(64));
    assert_eq!(h.join().unwrap(), (1..=64).sum::<u64>());
}

#[gort::test]
fn result_ok_with_question_mark() -> Result<(), std::num::ParseIntError> {
    let n: i32 = gort::go(|| "41".parse::<i32>()).join().unwrap()?;
    assert_eq!(n + 1, 42);
    Ok(())
}

// `Box<dyn Error>` is not `Send`: the value must still get out of the goroutine.
#[gort::test]
fn result_with_non_send_error() -> Result<(), Box<dyn Error>> {
    let n: u8 = "255".parse()?;
    if n == 255 {
        return Ok(()); // `return` returns from the test body, not from a helper
    }
    Err("unreachable".into())
}

#[gort::test]
#[should_panic(expected = "boom")]
fn panic_propagates() {
    panic!("boom");
}

#[gort::test(procs = 2)]
#[should_panic(expected = "boom 42")]
fn formatted_panic_propagates() {
    let x = 42;
    panic!("boom {x}");
}

#[gort::test]
#[should_panic(expected = "child boom")]
fn panic_from_a_joined_goroutine() {
    let h = gort::go(|| -> u32 { panic!("child boom") });
    let payload = h.join().unwrap_err();
    std::panic::resume_unwind(payload);
}

/// Attributes other than the test attribute are kept: this one would fail.
#[gort::test]
#[ignore = "checks that #[ignore] is kept; passes when run"]
fn ignore_is_kept() {
    if fixture_mode() {
        panic!("this ignored test ran");
    }
}

// Fixture for `failing_result_fails_the_test`: fails only in a child process.
#[gort::test]
#[ignore = "fixture, run in a child process by failing_result_fails_the_test"]
fn fixture_failing_result() -> Result<(), Box<dyn Error>> {
    println!("fixture stdout");
    if fixture_mode() {
        return Err("fixture error 17".into());
    }
    Ok(())
}

// Fixture for `failing_result_fails_the_test`: a passing one, as a control.
#[gort::test]
#[ignore = "fixture, run in a child process by failing_result_fails_the_test"]
fn fixture_ok() {}

/// Runs one test of this binary in a child process, in fixture mode.
fn run_fixture(name: &str, ignored: bool) -> (bool, String, String) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([name, "--exact", "--test-threads=1"])
        .args(ignored.then_some("--ignored"))
        .env(FIXTURE_ENV, "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn failing_result_fails_the_test() {
    let (ok, stdout, stderr) = run_fixture("fixture_failing_result", true);
    assert!(
        !ok,
        "the fixture should fail\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("Error: \"fixture error 17\""),
        "the error should be reported\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        all.contains("1 failed"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Output of the goroutine is captured by libtest like a plain test's.
    assert!(
        stdout.contains("---- fixture_failing_result stdout ----"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("fixture stdout"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let (ok, stdout, stderr) = run_fixture("fixture_ok", true);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn ignore_attribute_is_kept() {
    // Without --ignored the test is reported as ignored and not run.
    let (ok, stdout, stderr) = run_fixture("ignore_is_kept", false);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("1 ignored"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

// `#[gort::main]` on a function not called `main` keeps its signature.
#[gort::main]
fn sum_in_goroutines() -> u64 {
    let handles: Vec<_> = (1..=10u64).map(|i| gort::go(move || i * i)).collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

#[gort::main(procs = 2)]
fn procs_of_main_with_options() -> usize {
    gort::go(gort::procs).join().unwrap()
}

#[test]
fn main_attribute_on_other_functions() {
    assert_eq!(sum_in_goroutines(), 385);
    assert_eq!(procs_of_main_with_options(), 2);
}

// ---- #[gort::test]'s leak and deadlock checks ------------------------------------

#[gort::test]
#[should_panic(expected = "1 goroutine still alive when the test's main returned")]
fn a_goroutine_left_parked_fails_the_test() {
    let (tx, rx) = gort::chan::bounded::<u8>(0);
    // Kept open past main's return (dropping it would end the receive).
    std::mem::forget(tx);
    gort::Builder::new()
        .name("leaked")
        .spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
    gort::yield_now();
}

#[gort::test]
#[should_panic(expected = "\"leaked-too\" [chan receive")]
fn the_leak_report_lists_each_goroutine_as_dump_does() {
    let (tx, rx) = gort::chan::bounded::<u8>(0);
    gort::Builder::new()
        .name("leaked-too")
        .spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
    gort::yield_now();
    std::mem::forget(tx);
}

#[gort::test(leaks = "allow")]
fn leaks_allow_turns_the_check_off() {
    let (tx, rx) = gort::chan::bounded::<u8>(0);
    std::mem::forget(tx); // the goroutine stays parked past main's return
    gort::go(move || {
        let _ = rx.recv();
    });
    gort::yield_now();
}

#[gort::test]
fn goroutines_that_finish_just_after_main_are_not_leaks() {
    // Still running when main returns, done within the grace second.
    gort::go(|| gort::time::sleep(std::time::Duration::from_millis(50)));
}

#[gort::test(deadlock_after = "200ms")]
#[should_panic(expected = "gort: all goroutines are asleep - deadlock!")]
fn a_deadlocked_test_fails_instead_of_hanging() {
    let (_tx, rx) = gort::chan::bounded::<u8>(0);
    let _ = rx.recv();
}

#[gort::test(deadlock_after = "2s")]
fn waiting_on_a_timer_is_not_a_deadlock() {
    let t = std::time::Instant::now();
    gort::time::sleep(std::time::Duration::from_millis(300));
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
}
