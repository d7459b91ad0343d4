// mpmc: 4 producers and 4 consumers share one channel of capacity 128;
// each producer sends 250,000 distinct values (1,000,000 in all), the
// consumers sum what they receive. Measures a contended buffered channel.
// Counterpart of bench/src/bin/mpmc.rs.
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	producers   = 4
	consumers   = 4
	capacity    = 128
	perProducer = 250_000
	total       = producers * perProducer
)

type tally struct {
	sum   uint64
	count uint64
}

func main() {
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
	fmt.Printf("RESULT mpmc %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
