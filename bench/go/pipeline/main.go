// pipeline: 1,000,000 integers from a source goroutine through 4 stages of
// one goroutine each (x+1, x*2, x+3, x-5: 2x in all), every two neighbours
// linked by a channel of capacity 64, into a sink in the main goroutine
// that sums them. Checks the sum (N(N-1)). Measures hand-off along a chain
// of bounded channels where every goroutine is runnable at once.
// Counterpart of bench/src/bin/pipeline.rs.
package main

import (
	"fmt"
	"time"
)

const (
	n      = 1_000_000
	buffer = 64
)

// stage starts one goroutine applying f to every value of in, sending the
// results on the returned channel, which it closes when in is closed.
func stage(in <-chan uint64, f func(uint64) uint64) <-chan uint64 {
	out := make(chan uint64, buffer)
	go func() {
		for x := range in {
			out <- f(x)
		}
		close(out)
	}()
	return out
}

func main() {
	start := time.Now()
	src := make(chan uint64, buffer)
	go func() {
		for i := uint64(0); i < n; i++ {
			src <- i
		}
		close(src)
	}()
	c := stage(src, func(x uint64) uint64 { return x + 1 })
	c = stage(c, func(x uint64) uint64 { return x * 2 })
	c = stage(c, func(x uint64) uint64 { return x + 3 })
	c = stage(c, func(x uint64) uint64 { return x - 5 })
	var sum uint64
	for x := range c {
		sum += x
	}
	elapsed := time.Since(start)

	if want := uint64(n) * (n - 1); sum != want {
		panic(fmt.Sprintf("pipeline: sum is %d, want %d", sum, want))
	}
	fmt.Printf("RESULT pipeline %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
