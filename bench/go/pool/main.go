// pool: 1,000,000 tiny jobs (one atomic add of the job's index each)
// submitted from the main goroutine to 8 worker goroutines reading a
// buffered channel of capacity 1024, then close the channel and wait on a
// WaitGroup; checks the sum. Measures a worker pool's per-job cost: a
// buffered-channel hand-off of a closure.
// Counterpart of bench/src/bin/pool.rs.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	workers = 8
	queue   = 1024
	jobs    = 1_000_000
)

var total uint64

func main() {
	start := time.Now()
	work := make(chan func(), queue)
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for job := range work {
				job()
			}
		}()
	}
	for i := 0; i < jobs; i++ {
		v := uint64(i)
		work <- func() {
			atomic.AddUint64(&total, v)
		}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	want := uint64(jobs) * (jobs - 1) / 2
	if got := atomic.LoadUint64(&total); got != want {
		panic(fmt.Sprintf("pool: sum is %d, want %d", got, want))
	}
	fmt.Printf("RESULT pool %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
