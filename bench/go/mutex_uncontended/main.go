// mutex_uncontended: one goroutine locks and unlocks a sync.Mutex nobody
// else touches, 10,000,000 pairs; each critical section increments a
// counter guarded by the mutex. Measures the uncontended fast path
// (total ms / 10,000,000 = ns per lock+unlock pair).
// Counterpart of bench/src/bin/mutex_uncontended.rs.
package main

import (
	"fmt"
	"sync"
	"time"
)

const pairs = 10_000_000

var (
	mu      sync.Mutex
	counter uint64 // guarded by mu
)

func main() {
	start := time.Now()
	for i := 0; i < pairs; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	elapsed := time.Since(start)

	mu.Lock()
	got := counter
	mu.Unlock()
	if got != pairs {
		panic(fmt.Sprintf("mutex_uncontended: counter is %d, want %d", got, pairs))
	}
	fmt.Printf("RESULT mutex_uncontended %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
