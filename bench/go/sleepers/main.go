// sleepers: 1,000,000 goroutines each sleep a pseudo-random time between
// 10 ms and 1 s (drawn from a fixed seed, the same on every side), then add
// their delay to a counter; main waits for all of them with a WaitGroup and
// checks the sum. The floor is 1 s (the longest sleep); what is above it is
// timer insertion, expiry and wake-up of 1M goroutines.
// Counterpart of bench/src/bin/sleepers.rs.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	n    = 1_000_000
	seed = 0x5EED0F5EEEE5
)

// delayUs is splitmix64: the delay of goroutine i in microseconds, 10 ms to 1 s.
func delayUs(i uint64) uint64 {
	z := uint64(seed) + i*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return 10_000 + z%990_001
}

var totalUs uint64

func main() {
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(n)
	for i := uint64(0); i < n; i++ {
		go func(i uint64) {
			d := delayUs(i)
			time.Sleep(time.Duration(d) * time.Microsecond)
			atomic.AddUint64(&totalUs, d)
			wg.Done()
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)

	var want uint64
	for i := uint64(0); i < n; i++ {
		want += delayUs(i)
	}
	if got := atomic.LoadUint64(&totalUs); got != want {
		panic(fmt.Sprintf("sleepers: sum is %d, want %d", got, want))
	}
	fmt.Printf("RESULT sleepers %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
