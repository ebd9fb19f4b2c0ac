package recorder

import (
	"fmt"
	"sync"
)

// Group commit.
//
// A bbolt commit costs two disk syncs (the pages, then the meta page), and
// one write transaction runs at a time. Giving each call a commit of its
// own therefore queues every session behind all the others, a few
// milliseconds each; DB.Batch shares commits but first waits for company
// (MaxBatchDelay, 10 ms), which a fast session pays on every append, and
// once commits take longer than that delay its batches queue up one commit
// each. Instead, calls queue in arrival order; the call that finds no
// commit running leads: it takes the whole queue, runs one transaction for
// all of it, hands the lead to the first call that queued meanwhile, and
// wakes the calls of its batch with the result. So a burst of N calls
// costs a couple of commits, not N, and a lone call commits at once.
//
// Order is kept: there is only ever one leader, its batch is a prefix of
// the queue, and the next leader starts after it has committed (and after
// whatever its commit function does once the transaction is over, such as
// telling the audit trail's observers).

// groupCommit is the queue of one kind of write (audit records, recording
// chunks). The zero value is ready, with no bound on a commit's batch.
type groupCommit[T any] struct {
	// max bounds the summed weight of the requests one commit takes from
	// the queue (a single heavier request is committed alone), so that a
	// commit's transaction, and the wait of the calls behind it, stay
	// bounded. Zero means no bound.
	max int

	mu         sync.Mutex
	pending    []*groupRequest[T] // queued calls, in arrival order
	committing bool               // a leader is committing; pending waits for the next commit
}

// groupRequest is one call in the queue.
type groupRequest[T any] struct {
	item   T
	weight int
	err    error
	// wake receives false when the commit that held the request is over
	// (err is its result), or true when the request is to lead the next.
	wake chan bool
}

// do queues item and returns once a commit has run with it: the commit's
// error, the same for every item of its batch. commit runs with batches of
// the queue, one at a time, in queue order.
func (g *groupCommit[T]) do(item T, weight int, commit func([]T) error) error {
	req := &groupRequest[T]{item: item, weight: weight, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if g.committing {
		g.mu.Unlock()
		if lead := <-req.wake; !lead {
			return req.err
		}
	} else {
		g.committing = true
		g.mu.Unlock()
	}
	g.lead(commit)
	return req.err
}

// lead commits one batch taken from the head of the queue, which is the
// leader's own request: the first leader found the queue empty, and a
// handed-over lead goes to the head.
func (g *groupCommit[T]) lead(commit func([]T) error) {
	g.mu.Lock()
	n, weight := 0, 0
	for n < len(g.pending) && (n == 0 || g.max <= 0 || weight+g.pending[n].weight <= g.max) {
		weight += g.pending[n].weight
		n++
	}
	batch := g.pending[:n:n]
	if rest := g.pending[n:]; len(rest) > 0 {
		g.pending = append([]*groupRequest[T](nil), rest...)
	} else {
		g.pending = nil
	}
	g.mu.Unlock()

	// Whatever happens in commit, even a panic (a recovering middleware
	// would keep the process alive), the batch is answered and the lead
	// passed on: otherwise every later call would wait for ever.
	done := false
	defer func() {
		var p any
		if !done {
			p = recover()
			for _, r := range batch {
				r.err = fmt.Errorf("commit panicked: %v", p)
			}
		}
		g.mu.Lock()
		if len(g.pending) > 0 {
			g.pending[0].wake <- true
		} else {
			g.committing = false
		}
		g.mu.Unlock()
		for _, r := range batch[1:] {
			r.wake <- false
		}
		if !done {
			panic(p)
		}
	}()
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	err := commit(items)
	for _, r := range batch {
		r.err = err
	}
	done = true
}
