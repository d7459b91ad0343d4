// context_tree: builds a 1000-node 10-ary tree of cancellable contexts
// (node i is context.WithCancel of node (i-1)/10; node 0 is WithCancel of
// Background), cancels the root, and waits on every node's Done channel;
// then calls every node's cancel func, as `defer cancel()` would (a no-op by
// then). 100 rounds. Measures context creation and linking to a parent, and
// the propagation of a cancel down a tree.
// Counterpart of bench/src/bin/context_tree.rs.
package main

import (
	"context"
	"fmt"
	"time"
)

const (
	nodes  = 1000
	fanout = 10
	rounds = 100
)

func main() {
	ctxs := make([]context.Context, nodes)
	cancels := make([]context.CancelFunc, nodes)
	closed := 0

	start := time.Now()
	for r := 0; r < rounds; r++ {
		ctxs[0], cancels[0] = context.WithCancel(context.Background())
		for i := 1; i < nodes; i++ {
			ctxs[i], cancels[i] = context.WithCancel(ctxs[(i-1)/fanout])
		}
		cancels[0]()
		for _, ctx := range ctxs {
			<-ctx.Done()
			closed++
		}
		for _, cancel := range cancels {
			cancel()
		}
	}
	elapsed := time.Since(start)

	if want := rounds * nodes; closed != want {
		panic(fmt.Sprintf("context_tree: %d done channels closed, want %d", closed, want))
	}
	for i, ctx := range ctxs {
		if err := ctx.Err(); err != context.Canceled {
			panic(fmt.Sprintf("context_tree: node %d has err %v, want %v", i, err, context.Canceled))
		}
	}
	fmt.Printf("RESULT context_tree %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
