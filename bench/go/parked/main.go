// parked: 1,000,000 goroutines each park receiving on one shared unbuffered
// channel; once all have started, the resident memory they added is read
// from /proc/self/status (VmRSS after - VmRSS before, divided by 1M) and
// printed as RESULT_BYTES_PER_G parked <bytes>; then the channel is closed,
// which releases every goroutine, and all are waited for. The time covers
// spawning, parking, the release and the wait.
// Counterpart of bench/src/bin/parked.rs.
package main

import (
	"fmt"
	"sync"
	"time"

	"gorobench/internal/measure"
)

const n = 1_000_000

func main() {
	release := make(chan struct{})
	var started, finished sync.WaitGroup

	before := measure.VmRSS()
	start := time.Now()
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			if _, ok := <-release; ok {
				panic("parked: a value was sent")
			}
			finished.Done()
		}()
	}
	started.Wait()
	after := measure.VmRSS()
	close(release)
	finished.Wait()
	elapsed := time.Since(start)

	perG := uint64(0)
	if after > before {
		perG = (after - before) / n
	}
	fmt.Printf("RESULT parked %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
	fmt.Printf("RESULT_BYTES_PER_G parked %d\n", perG)
}
