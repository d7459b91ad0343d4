// The Go side of examples/throughput.rs: the same pool and pipeline shapes,
// written by hand as Go programs usually are.
//
//	go run crates/goro-patterns/examples/throughput.go
package main

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

const n = 1_000_000

func best(runs int, f func()) float64 {
	b := math.Inf(1)
	for i := 0; i < runs; i++ {
		t := time.Now()
		f()
		b = math.Min(b, time.Since(t).Seconds())
	}
	return b
}

func main() {
	pool := best(3, func() {
		var sum atomic.Uint64
		jobs := make(chan func(), 64)
		results := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					j()
					results <- struct{}{}
				}
			}()
		}
		done := make(chan int)
		go func() {
			c := 0
			for range results {
				c++
			}
			done <- c
		}()
		for i := uint64(0); i < n; i++ {
			i := i
			jobs <- func() { sum.Add(i) }
		}
		close(jobs)
		wg.Wait()
		close(results)
		if <-done != n || sum.Load() != n*(n-1)/2 {
			panic("wrong")
		}
	})
	fmt.Printf("pool::tiny_jobs/1M/8w      %8.1f ms  (%.0f ns/job)\n", pool*1e3, pool*1e9/n)

	pipe := best(3, func() {
		src := make(chan uint64, 16)
		go func() {
			for i := uint64(0); i < n; i++ {
				src <- i
			}
			close(src)
		}()
		in := src
		for s := 0; s < 4; s++ {
			out := make(chan uint64, 16)
			go func(in <-chan uint64, out chan<- uint64) {
				for x := range in {
					out <- x + 1
				}
				close(out)
			}(in, out)
			in = out
		}
		var sum uint64
		for x := range in {
			sum += x
		}
		if sum != n*(n-1)/2+4*n {
			panic("wrong")
		}
	})
	fmt.Printf("pipeline::4_stages/1M      %8.1f ms  (%.0f ns/item)\n", pipe*1e3, pipe*1e9/n)
}
