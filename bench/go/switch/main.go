// switch: two goroutines on one processor (GOMAXPROCS=1) hand the CPU to
// each other with runtime.Gosched, 10,000,000 switches in all. Measures the
// bare cost of a goroutine switch through the scheduler.
// Counterpart of bench/src/bin/switch.rs.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

const switches = 10_000_000

func main() {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	start := time.Now()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < switches/2; i++ {
				counts[g]++
				runtime.Gosched()
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if counts[0]+counts[1] != switches {
		panic(fmt.Sprintf("switch: %d yields, want %d", counts[0]+counts[1], switches))
	}
	fmt.Printf("RESULT switch %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
