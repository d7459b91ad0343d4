// mutex: 1000 goroutines contend on one sync.Mutex, 1000 lock/unlock pairs
// each (1,000,000 in all); every critical section increments a counter
// guarded by the mutex. Measures a contended mutex: spinning, parking and
// waking waiters, hand-off under starvation mode.
// Counterpart of bench/src/bin/mutex.rs.
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	goroutines = 1000
	perG       = 1000
	total      = goroutines * perG
)

var (
	mu      sync.Mutex
	counter uint64 // guarded by mu
)

func main() {
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(goroutines)
	for g := 0; g < goroutines; g++ {
		go func() {
			defer wg.Done()
			for k := 0; k < perG; k++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	mu.Lock()
	got := counter
	mu.Unlock()
	if got != total {
		panic(fmt.Sprintf("mutex: counter is %d, want %d", got, total))
	}
	fmt.Printf("RESULT mutex %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
