// ring: 503 goroutines in a ring, each linked to the next by an unbuffered
// channel; a token is passed 10,000,000 hops in total (the "thread-ring"
// workload). Measures hand-off throughput along a chain where only one
// goroutine is runnable at a time.
// Counterpart of bench/src/bin/ring.rs.
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	members = 503
	hops    = 10_000_000
)

// member forwards the token, decremented by one hop, until it reads 0; that
// member reports its index and closes its outgoing channel, and the close
// runs round the ring so that every member returns.
func member(id int, in <-chan int, out chan<- int, done chan<- int, wg *sync.WaitGroup) {
	defer wg.Done()
	for v := range in {
		if v == 0 {
			done <- id
			break
		}
		out <- v - 1
	}
	close(out)
}

func main() {
	links := make([]chan int, members)
	for i := range links {
		links[i] = make(chan int)
	}
	done := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Add(members)
	for i := 0; i < members; i++ {
		go member(i, links[i], links[(i+1)%members], done, &wg)
	}

	start := time.Now()
	links[0] <- hops
	last := <-done
	wg.Wait()
	elapsed := time.Since(start)

	if want := hops % members; last != want {
		panic(fmt.Sprintf("ring: token ended at member %d, want %d", last, want))
	}
	fmt.Printf("RESULT ring %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
