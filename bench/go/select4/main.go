// select4: 4 producer goroutines each send 250,000 distinct values on their
// own unbuffered channel and close it; the main goroutine receives all
// 1,000,000 with a select over the 4 channels (a closed one is set to nil)
// and checks count and sum. Measures select over several busy channels.
// Counterpart of bench/src/bin/select4.rs.
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	channels   = 4
	perChannel = 250_000
	total      = channels * perChannel
)

func main() {
	var chs [channels]chan uint64
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(channels)
	for p := 0; p < channels; p++ {
		ch := make(chan uint64)
		chs[p] = ch
		go func(p uint64, ch chan uint64) {
			defer wg.Done()
			base := p * perChannel
			for k := uint64(0); k < perChannel; k++ {
				ch <- base + k
			}
			close(ch)
		}(uint64(p), ch)
	}
	var sum, count uint64
	live := channels
	for live > 0 {
		select {
		case v, ok := <-chs[0]:
			if ok {
				sum += v
				count++
			} else {
				chs[0] = nil
				live--
			}
		case v, ok := <-chs[1]:
			if ok {
				sum += v
				count++
			} else {
				chs[1] = nil
				live--
			}
		case v, ok := <-chs[2]:
			if ok {
				sum += v
				count++
			} else {
				chs[2] = nil
				live--
			}
		case v, ok := <-chs[3]:
			if ok {
				sum += v
				count++
			} else {
				chs[3] = nil
				live--
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	if count != total {
		panic(fmt.Sprintf("select4: received %d values, want %d", count, total))
	}
	if want := uint64(total) * (total - 1) / 2; sum != want {
		panic(fmt.Sprintf("select4: sum is %d, want %d", sum, want))
	}
	fmt.Printf("RESULT select4 %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
