//! Five workers, three 100 ms tasks each, on two processors: the classic Go
//! worker-pool program.
//!
//! ```go
//! func worker(id int, wg *sync.WaitGroup) {
//!     for t := 1; t <= 3; t++ {
//!         fmt.Printf("Worker %d starting task %d\n", id, t)
//!         time.Sleep(100 * time.Millisecond)
//!         fmt.Printf("Worker %d done with task %d\n", id, t)
//!     }
//!     wg.Done()
//! }
//!
//! func main() {
//!     runtime.GOMAXPROCS(2)
//!     var wg sync.WaitGroup
//!     for i := 1; i <= 5; i++ {
//!         wg.Add(1)
//!         go worker(i, &wg)
//!     }
//!     wg.Wait()
//!     fmt.Println("All workers done")
//! }
//! ```
//!
//! A sleeping goroutine is parked, not a blocked thread, so the 15 tasks of
//! 100 ms overlap and the program takes about 300 ms, not 1.5 s, even though
//! only two OS threads run goroutines.
//!
//! Run with `cargo run --release -p gort --example workers`.

use std::time::{Duration, Instant};

use gort::sync::WaitGroup;

fn worker(id: u32) {
    for t in 1..=3 {
        println!("Worker {id} starting task {t}");
        gort::time::sleep(Duration::from_millis(100));
        println!("Worker {id} done with task {t}");
    }
}

#[gort::main]
fn main() {
    let start = Instant::now();
    gort::set_procs(2); // runtime.GOMAXPROCS(2)

    let wg = WaitGroup::new();
    for i in 1..=5 {
        // Go 1.25's wg.Go: Add(1), spawn, Done when the goroutine returns.
        wg.go(move || worker(i));
    }
    wg.wait();

    println!("All workers done in {}ms", start.elapsed().as_millis());
}
