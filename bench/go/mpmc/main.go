// mpmc: 4 producers and 4 consumers share one channel; each producer sends
// 250,000 distinct values (1,000,000 in all), the consumers sum what they
// receive. The capacity is the first argument (0, 1 or 128; default 128)
// and the workload is reported as mpmc_c<capacity>. Measures a contended
// channel.
// Counterpart of bench/src/bin/mpmc.rs.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

const (
	producers   = 4
	consumers   = 4
	perProducer = 250_000
	total       = producers * perProducer
)

type tally struct {
	sum   uint64
	count uint64
}

func main() {
	capacity := 128
	if len(os.Args) > 1 {
		c, err := strconv.Atoi(os.Args[1])
		if err != nil {
			panic("mpmc: capacity must be a number")
		}
		capacity = c
	}
	ch := make(chan uint64, capacity)
	tallies := make([]tally, consumers)
	var prodWG, consWG sync.WaitGroup

	start := time.Now()
	prodWG.Add(producers)
	for p := 0; p < producers; p++ {
		go func(p uint64) {
			defer prodWG.Done()
			base := p * perProducer
			for k := uint64(0); k < perProducer; k++ {
				ch <- base + k
			}
		}(uint64(p))
	}
	consWG.Add(consumers)
	for c := 0; c < consumers; c++ {
		go func(c int) {
			defer consWG.Done()
			var t tally
			for v := range ch {
				t.sum += v
				t.count++
			}
			tallies[c] = t
		}(c)
	}
	prodWG.Wait()
	close(ch)
	consWG.Wait()
	elapsed := time.Since(start)

	var sum, count uint64
	for _, t := range tallies {
		sum += t.sum
		count += t.count
	}
	if count != total {
		panic(fmt.Sprintf("mpmc: received %d values, want %d", count, total))
	}
	if want := uint64(total) * (total - 1) / 2; sum != want {
		panic(fmt.Sprintf("mpmc: sum is %d, want %d", sum, want))
	}
	fmt.Printf("RESULT mpmc_c%d %.3f ms\n", capacity, float64(elapsed.Nanoseconds())/1e6)
}
