// spawn: start 1,000,000 goroutines that each do one atomic add, and wait
// for all of them with a sync.WaitGroup. Measures goroutine creation,
// first run and exit. Counterpart of bench/src/bin/spawn.rs.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const n = 1_000_000

var total uint64

func main() {
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(v uint64) {
			atomic.AddUint64(&total, v)
			wg.Done()
		}(uint64(i))
	}
	wg.Wait()
	elapsed := time.Since(start)

	want := uint64(n) * (n - 1) / 2
	if got := atomic.LoadUint64(&total); got != want {
		panic(fmt.Sprintf("spawn: sum is %d, want %d", got, want))
	}
	fmt.Printf("RESULT spawn %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
