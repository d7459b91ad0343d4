// idle: goroutines left parked for seconds. Two workloads, chosen by the
// first argument:
//
//   - none (idle): 1,000,000 goroutines each park receiving on one shared
//     unbuffered channel; once all have started they are left parked for
//     IDLE_HOLD_MS (default 5000) ms, then the resident memory they added is
//     read from /proc/self/status (VmRSS after the hold - VmRSS before the
//     first spawn, divided by 1M) and printed as
//     RESULT_BYTES_PER_G idle <bytes>; then the channel is closed, which
//     releases every goroutine, and all are waited for. The time covers the
//     release and the wait only: waking 1,000,000 long-idle goroutines.
//   - wake (idle_wake): 10,000 goroutines each park receiving on their own
//     unbuffered request channel, all replying on one shared unbuffered
//     reply channel; they are left parked for IDLE_HOLD_MS (default 3000)
//     ms; then the main goroutine, one goroutine after the other, sends it a
//     value and waits for its reply: 10,000 sequential round trips, each
//     waking a goroutine parked for seconds. The time covers the 10,000
//     round trips; their median is printed as an INFO line.
//
// Counterpart of bench/src/bin/idle.rs.
package main

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"gorobench/internal/measure"
)

const (
	idleN = 1_000_000
	wakeN = 10_000
)

// idle is the idle workload.
func idle() {
	release := make(chan struct{})
	var started, finished sync.WaitGroup

	before := measure.VmRSS()
	started.Add(idleN)
	finished.Add(idleN)
	for i := 0; i < idleN; i++ {
		go func() {
			started.Done()
			if _, ok := <-release; ok {
				panic("idle: a value was sent")
			}
			finished.Done()
		}()
	}
	started.Wait()
	time.Sleep(measure.IdleHold(5000))
	after := measure.VmRSS()

	start := time.Now()
	close(release)
	finished.Wait()
	elapsed := time.Since(start)

	perG := uint64(0)
	if after > before {
		perG = (after - before) / idleN
	}
	fmt.Printf("RESULT_BYTES_PER_G idle %d\n", perG)
	fmt.Printf("RESULT idle %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}

// idleWake is the idle_wake workload.
func idleWake() {
	reply := make(chan uint64)
	var started, finished sync.WaitGroup

	started.Add(wakeN)
	finished.Add(wakeN)
	requests := make([]chan uint64, wakeN)
	for i := range requests {
		req := make(chan uint64)
		requests[i] = req
		go func() {
			started.Done()
			// Parks until its request comes, then until the channel is
			// closed.
			for v := range req {
				reply <- v + 1
			}
			finished.Done()
		}()
	}
	started.Wait()
	time.Sleep(measure.IdleHold(3000))

	trips := make([]time.Duration, 0, wakeN)
	start := time.Now()
	for i, req := range requests {
		t := time.Now()
		req <- uint64(i)
		got := <-reply
		trips = append(trips, time.Since(t))
		if got != uint64(i)+1 {
			panic(fmt.Sprintf("idle: sent %d, got back %d", i, got))
		}
	}
	elapsed := time.Since(start)

	for _, req := range requests {
		close(req)
	}
	finished.Wait()
	sort.Slice(trips, func(a, b int) bool { return trips[a] < trips[b] })
	fmt.Printf("INFO idle_wake median_round_trip_ns=%d\n", trips[wakeN/2].Nanoseconds())
	fmt.Printf("RESULT idle_wake %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}

func main() {
	switch {
	case len(os.Args) < 2:
		idle()
	case os.Args[1] == "wake":
		idleWake()
	default:
		panic(fmt.Sprintf("idle: unknown argument '%s' (none, or wake)", os.Args[1]))
	}
}
