// pingpong: two goroutines (main and one echo goroutine) bounce a value over
// two unbuffered channels, 1,000,000 round trips. Measures the latency of a
// rendezvous hand-off: park, wake, switch.
// Counterpart of bench/src/bin/pingpong.rs.
package main

import (
	"fmt"
	"time"
)

const rounds = 1_000_000

func main() {
	ping := make(chan uint64)
	pong := make(chan uint64)
	echoed := make(chan uint64)

	go func() {
		var count uint64
		for v := range ping {
			pong <- v + 1
			count++
		}
		echoed <- count
	}()

	start := time.Now()
	var sum uint64
	for i := uint64(0); i < rounds; i++ {
		ping <- i
		got := <-pong
		if got != i+1 {
			panic(fmt.Sprintf("pingpong: sent %d, got back %d", i, got))
		}
		sum += got
	}
	close(ping)
	count := <-echoed
	elapsed := time.Since(start)

	if count != rounds {
		panic(fmt.Sprintf("pingpong: echo goroutine saw %d values, want %d", count, rounds))
	}
	if want := uint64(rounds) * (rounds + 1) / 2; sum != want {
		panic(fmt.Sprintf("pingpong: sum is %d, want %d", sum, want))
	}
	fmt.Printf("RESULT pingpong %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
