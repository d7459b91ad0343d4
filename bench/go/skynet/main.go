// skynet: the classic skynet benchmark. A 10-ary tree of goroutines with
// 1,000,000 leaves (1,111,111 goroutines in all); each leaf sends its number
// to its parent over the parent's unbuffered channel, each inner node sums
// the 10 values it receives and sends the sum up. Measures spawn plus
// channel hand-off under a wide, deep fan-out.
// Counterpart of bench/src/bin/skynet.rs.
package main

import (
	"fmt"
	"time"
)

const (
	leaves = 1_000_000
	fanout = 10
	want   = 499_999_500_000
)

func skynet(out chan<- uint64, num, size, div uint64) {
	if size == 1 {
		out <- num
		return
	}
	children := make(chan uint64)
	for i := uint64(0); i < div; i++ {
		sub := num + i*(size/div)
		go skynet(children, sub, size/div, div)
	}
	var sum uint64
	for i := uint64(0); i < div; i++ {
		sum += <-children
	}
	out <- sum
}

func main() {
	start := time.Now()
	root := make(chan uint64)
	go skynet(root, 0, leaves, fanout)
	sum := <-root
	elapsed := time.Since(start)

	if sum != want {
		panic(fmt.Sprintf("skynet: sum is %d, want %d", sum, want))
	}
	fmt.Printf("RESULT skynet %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
