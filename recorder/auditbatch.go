package recorder

import "fmt"

// Group commit of the audit trail.
//
// A bbolt commit costs two disk syncs (the pages, then the meta page), and
// one write transaction runs at a time. Appending each session's records in
// a commit of its own therefore queues every session start behind all the
// others, a few milliseconds each. Instead, calls queue in arrival order;
// the call that finds no commit running leads: it takes the whole queue,
// appends every record of it to the chain in one transaction, tells the
// observers, hands the lead to the first call that queued meanwhile, and
// wakes the calls of its batch with the result. So a burst of N sessions
// costs a couple of commits, not N, and a lone call commits at once (no
// delay waiting for company, unlike DB.Batch's MaxBatchDelay).
//
// The chain stays strictly ordered: there is only ever one leader, its
// batch is a prefix of the queue, and the next leader starts after it has
// committed and told the observers.

// maxAuditBatch bounds the records one commit takes from the queue (one
// call with more is committed alone), so that a commit's transaction, and
// the wait of the calls behind it, stay bounded.
const maxAuditBatch = 4096

// auditRequest is one AppendAudits call in the queue.
type auditRequest struct {
	// recs are the checked records; the commit fills Seq, Prev and Hash.
	recs []AuditRecord
	err  error
	// wake receives false when the commit that held the request is over
	// (err is its result), or true when the request is to lead the next.
	wake chan bool
}

// append queues req and returns once a commit has stored its records or
// failed (the commit's error). commit runs with batches of the queue, one
// at a time.
func (a *auditObservers) append(req *auditRequest, commit func([]*auditRequest) error) error {
	a.mu.Lock()
	a.pending = append(a.pending, req)
	if a.committing {
		a.mu.Unlock()
		if lead := <-req.wake; !lead {
			return req.err
		}
	} else {
		a.committing = true
		a.mu.Unlock()
	}
	a.lead(commit)
	return req.err
}

// lead commits one batch taken from the head of the queue, which is the
// leader's own request: the first leader found the queue empty, and a
// handed-over lead goes to the head.
func (a *auditObservers) lead(commit func([]*auditRequest) error) {
	a.mu.Lock()
	n, recs := 0, 0
	for n < len(a.pending) && (n == 0 || recs+len(a.pending[n].recs) <= maxAuditBatch) {
		recs += len(a.pending[n].recs)
		n++
	}
	batch := a.pending[:n:n]
	if rest := a.pending[n:]; len(rest) > 0 {
		a.pending = append([]*auditRequest(nil), rest...)
	} else {
		a.pending = nil
	}
	a.mu.Unlock()

	// Whatever happens in commit, even a panic (a recovering middleware
	// would keep the process alive), the batch is answered and the lead
	// passed on: otherwise every later append would wait for ever.
	done := false
	defer func() {
		var p any
		if !done {
			p = recover()
			for _, r := range batch {
				r.err = fmt.Errorf("audit commit panicked: %v", p)
			}
		}
		a.mu.Lock()
		if len(a.pending) > 0 {
			a.pending[0].wake <- true
		} else {
			a.committing = false
		}
		a.mu.Unlock()
		for _, r := range batch[1:] {
			r.wake <- false
		}
		if !done {
			panic(p)
		}
	}()
	err := commit(batch)
	for _, r := range batch {
		r.err = err
	}
	if err == nil {
		// Before the next commit starts, so that observers see chain order.
		for _, r := range batch {
			for _, rec := range r.recs {
				a.notify(rec)
			}
		}
	}
	done = true
}
