//! Stack failure modes, each in a child process (this test binary
//! re-executing itself): a goroutine that overflows its stack hits its
//! guard page and the process prints which goroutine overflowed which size
//! of stack, then aborts; other faults are left to the default action; and
//! with the `mprotect` guard fallback, exhausting the kernel's mapping limit
//! is a clear error naming `vm.max_map_count`.

use std::process::Command;

fn child() -> bool {
    std::env::var("GORT_OVERFLOW_CHILD").is_ok()
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = std::hint::black_box([n; 64]);
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1) + buf[3]
}

#[test]
fn overflow_is_reported_with_id_name_and_size_then_aborts() {
    overflow_case(None);
}

#[test]
fn overflow_is_reported_with_the_mprotect_guard_fallback_too() {
    overflow_case(Some("mprotect"));
}

fn overflow_case(guard: Option<&str>) {
    if child() {
        let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            let h = gort::Builder::new()
                .name("worker")
                .stack_size(64 * 1024)
                .spawn(|| recurse(0))
                .unwrap();
            println!("spawned {}", h.id().as_u64());
            let _ = h.join();
        });
        unreachable!("the overflow aborts the process");
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "overflow_is_reported_with_id_name_and_size_then_aborts",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("GORT_OVERFLOW_CHILD", "1");
    if let Some(mode) = guard {
        cmd.env("GORT_STACK_GUARD", mode);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc_sigabrt()), "{stderr}");
    let id: String = stdout
        .split("spawned ")
        .nth(1)
        .expect("child printed the goroutine id")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let want = format!("goroutine {id} \"worker\" overflowed its 64 KiB stack");
    assert!(stderr.contains(&want), "want {want:?} in: {stderr}");
}

#[test]
fn a_fault_outside_any_guard_page_is_not_reported_as_overflow() {
    if child() {
        if std::env::var("GORT_NULL_CHILD").is_ok() {
            gort::go(|| 1).join().unwrap(); // install gort's handler
                                            // SAFETY: deliberately faults (in a child process) to show that
                                            // gort hands faults that are not overflows to the default action.
            unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
        }
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_fault_outside_any_guard_page_is_not_reported_as_overflow",
            "--nocapture",
        ])
        .env("GORT_OVERFLOW_CHILD", "1")
        .env("GORT_NULL_CHILD", "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(11), "SIGSEGV expected: {stderr}");
    assert!(!stderr.contains("overflowed"), "{stderr}");
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn hitting_the_mapping_limit_is_an_error_naming_vm_max_map_count() {
    if std::env::var("GORT_MAPLIMIT_CHILD").is_ok() {
        let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
        let msg = rt.run(|| {
            let release = gort::sync::WaitGroup::new();
            release.add(1);
            let mut spawned = 0usize;
            let err = loop {
                let r = release.clone();
                match gort::Builder::new()
                    .stack_size(16 * 1024)
                    .spawn(move || r.wait())
                {
                    Ok(_) => spawned += 1,
                    Err(e) => break e,
                }
                assert!(spawned < 200_000, "never hit the mapping limit");
            };
            let panic = std::panic::catch_unwind(|| gort::go(|| ())).unwrap_err();
            let panic = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            release.done();
            format!("spawned={spawned}\nerr={err}\npanic={panic}")
        });
        println!("{msg}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hitting_the_mapping_limit_is_an_error_naming_vm_max_map_count",
            "--nocapture",
        ])
        .env("GORT_MAPLIMIT_CHILD", "1")
        .env("GORT_STACK_GUARD", "mprotect")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let err = stdout
        .lines()
        .find(|l| l.starts_with("err="))
        .expect(&stdout);
    assert!(err.contains("vm.max_map_count"), "{err}");
    let panic = stdout
        .lines()
        .find(|l| l.starts_with("panic="))
        .expect(&stdout);
    assert!(
        panic.contains("vm.max_map_count"),
        "go's panic names the limit: {panic}"
    );
}

#[test]
fn a_goroutine_panic_report_names_the_goroutine_and_its_spawn_site() {
    if std::env::var("GORT_PANIC_CHILD").is_ok() {
        let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
        let id = rt.run(|| {
            let h = gort::Builder::new()
                .name("worker")
                .spawn(|| panic!("boom in worker"))
                .unwrap();
            let id = h.id().as_u64();
            assert!(h.join().is_err());
            id
        });
        println!("panicked-id={id}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_goroutine_panic_report_names_the_goroutine_and_its_spawn_site",
            "--nocapture",
        ])
        .env("GORT_PANIC_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let id: String = stdout
        .split("panicked-id=")
        .nth(1)
        .expect(&stdout)
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let want = format!("goroutine {id} \"worker\" (spawned at gort/tests/stacks.rs:");
    assert!(stderr.contains(&want), "want {want:?} in: {stderr}");
    assert!(stderr.contains("boom in worker"), "{stderr}");
}
