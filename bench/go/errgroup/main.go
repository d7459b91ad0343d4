// errgroup: an error group (with a context) runs 10,000 tasks that each do
// one atomic add and return nil, and waits for them; 10 rounds, a fresh
// group each round. Measures group bookkeeping on top of goroutine spawn
// and a WaitGroup-style wait.
// Counterpart of bench/src/bin/errgroup.rs.
//
// golang.org/x/sync/errgroup is not in the standard library, and this suite
// stays standard-library only (no module downloads), so group below is a
// minimal local equivalent: what errgroup.Group does (minus SetLimit and
// TryGo, which this workload does not use) — a sync.WaitGroup for the
// goroutines, a sync.Once to keep the first error, and the cancel func of a
// context.WithCancel, called on the first error and when Wait returns.
package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	tasks  = 10_000
	rounds = 10
)

// group is what errgroup.Group does.
type group struct {
	cancel  func()
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
}

// withContext is errgroup.WithContext: the returned context is cancelled the
// first time a function passed to Go returns an error, or when Wait returns.
func withContext(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &group{cancel: cancel}, ctx
}

// Go is errgroup.Group.Go: runs f in a new goroutine; the first non-nil
// error cancels the group's context and is kept for Wait.
func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.errOnce.Do(func() {
				g.err = err
				if g.cancel != nil {
					g.cancel()
				}
			})
		}
	}()
}

// Wait is errgroup.Group.Wait: waits for every goroutine started with Go,
// cancels the context, and returns the first error (if any).
func (g *group) Wait() error {
	g.wg.Wait()
	if g.cancel != nil {
		g.cancel()
	}
	return g.err
}

var total uint64

func main() {
	start := time.Now()
	for r := 0; r < rounds; r++ {
		g, ctx := withContext(context.Background())
		for i := 0; i < tasks; i++ {
			v := uint64(i)
			g.Go(func() error {
				atomic.AddUint64(&total, v)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			panic(fmt.Sprintf("errgroup: Wait returned %v", err))
		}
		if ctx.Err() == nil {
			panic("errgroup: the group's context is live after Wait")
		}
	}
	elapsed := time.Since(start)

	want := uint64(rounds) * tasks * (tasks - 1) / 2
	if got := atomic.LoadUint64(&total); got != want {
		panic(fmt.Sprintf("errgroup: sum is %d, want %d", got, want))
	}
	fmt.Printf("RESULT errgroup %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
