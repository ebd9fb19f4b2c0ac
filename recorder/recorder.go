package recorder

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultFlushInterval is the flush interval when none is configured:
	// the most a crash can lose of a recording.
	DefaultFlushInterval = time.Second
	// flushThreshold makes the recorder flush before the interval ends
	// when this much is buffered. Each flush is a commit (two fsyncs), so
	// a fast session should not flush every few kilobytes: at 64 KiB, log
	// text streamed through the bastion at 75 MB/s, at 4 MiB at 96
	// (BenchmarkThroughput, 512 MiB, one run each). The flush interval
	// still bounds what a crash loses.
	flushThreshold = 4 << 20
	// DefaultMaxPending is how many raw output bytes may wait for the
	// flusher before the session's writes wait for it in turn. It sets the
	// size of a busy session's appends, each a commit: log text streamed
	// at 125 MB/s with 8 MiB and at 171 with 16 (BenchmarkRecording).
	DefaultMaxPending = 16 << 20
	// appendTimeout bounds one append to the store: a store that hangs
	// fails the recording (and, in terminate mode, the session) instead of
	// stalling it for ever.
	appendTimeout = 30 * time.Second
	// maxEventBytes bounds the raw bytes of one event, and so the length of
	// one line (NUL bytes take six bytes of JSON each).
	maxEventBytes = 64 << 10
	// pieceBytes is the size of the event lines the flusher hands to the
	// store as one chunk: small enough that preparing it (checking,
	// compressing and indexing: Store.PrepareChunk) reads it from the
	// core's cache right after it was encoded, large enough that the seek
	// index stays small. Zeros, six bytes of JSON each, were recorded at
	// 142 MB/s when 32 MiB of lines were encoded before the store read
	// them back from memory four times, and at 250-270 so
	// (BenchmarkRecording, 512 MiB).
	pieceBytes = 1 << 20
	// maxPreparing is how many pieces of one session are prepared at
	// once, beside the flusher encoding the next. One: the flusher and a
	// preparer, with the session's own forwarding and masking, already
	// keep two cores busy, and a second preparer only took CPU from the
	// forwarding (BenchmarkThroughput, 512 MiB, two rounds each: zeros
	// 129 -> 145 MB/s, log text 84 -> 89 with one).
	maxPreparing = 1
	// maxBatchStored bounds the stored bytes of one append (a commit, two
	// fsyncs): it bounds what a fast session holds in memory (the batch
	// being prepared and the one being committed). Text and zeros
	// compress to a few percent, so a flush of MaxPending raw bytes is one
	// commit; binary output stays near the size of its event lines.
	maxBatchStored = 32 << 20
	// pieceBufBytes is the capacity of a piece buffer: a piece is cut
	// after the event that reaches pieceBytes, so there is room for one
	// more event at its worst (six bytes of JSON per byte, and framing),
	// and the buffer never grows.
	pieceBufBytes = pieceBytes + 6*maxEventBytes + 256
)

// RecorderConfig configures NewRecorder.
type RecorderConfig struct {
	// Store receives the row and the chunks.
	Store Store
	// Meta is the row to create. The caller sets ID, User, Serial,
	// ClientAddr, Target, Start, Width, Height, Term and Title; the
	// recorder owns State, End, ExitStatus, the byte counts and Error. An
	// empty ID gets one from NewSessionID; a zero Start gets Now().
	Meta SessionMeta
	// FlushInterval is the longest time event lines wait in memory;
	// zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// RecordInput records what the user typed as "i" events. Off by
	// default: typed input contains passwords.
	RecordInput bool
	// Now is the clock; nil means time.Now. Event times are Now() minus
	// Meta.Start.
	Now func() time.Time
	// Logger receives the one report of a recording failure; nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxPending is how many raw bytes may wait for the flusher (besides
	// the batch it is encoding and the one being stored); past it
	// Output and Input wait until the flusher has taken them, which slows
	// the session to the speed of the store (SSH flow control carries that
	// back to the target) rather than dropping evidence or failing a
	// session that is merely fast. Zero means DefaultMaxPending.
	MaxPending int

	// newTicker replaces time.NewTicker in tests.
	newTicker func(time.Duration) (<-chan time.Time, func())
}

// Recorder records one session channel into a Store. Its methods are safe
// for concurrent use: output and input arrive from different goroutines.
//
// Output, Input, Resize and Marker only copy the raw bytes with their time
// (a memmove on the session's hot path); a goroutine owned by the Recorder
// decodes UTF-8, encodes the asciicast lines and appends them as one chunk
// at least every flush interval, and sooner once ~64 KiB are waiting. So
// the encoding and compression run beside the session, on another core.
// One append may be under way while the next batch is encoded, so that a
// commit's fsync does not stall the encoding; appends still happen one at
// a time, in order. Writers wait only when MaxPending raw bytes are queued
// behind those two batches. The first failing
// append closes Failed() and sets Err(); from then on events are dropped,
// and Close reports the failure.
type Recorder struct {
	store       Store
	id          string
	recordInput bool
	now         func() time.Time
	log         *slog.Logger
	maxPending  int
	bg          context.Context // for the flusher: lives until Close
	start       time.Time       // keeps the monotonic reading of the start

	// Lock order: flushMu, then mu. flushMu orders appends (chunks are
	// stored in event order) and owns the decoders and the encode buffers.
	flushMu sync.Mutex
	out, in utf8Decoder
	// inflight is the append under way, if any: the next flush encodes
	// while it commits (its fsync), and waits for it before appending in
	// turn, so chunks are still stored in order.
	inflight chan error
	// preparing holds a token for each piece being prepared (at most
	// maxPreparing); bufs are free piece buffers of a busy session, handed
	// back by the preparers and dropped once the session is idle.
	preparing chan struct{}
	bufs      chan []byte
	// The queue and arena that writers fill while a busy session's last
	// batch is encoded (double buffering: no regrowth from nothing).
	spareQueue []rawEvent
	spareArena []byte
	// wasBusy is whether the last flush was a busy one. The buffers are
	// let go after two quiet flushes in a row, not one: the interval's
	// tick lands between the busy flushes of a fast session, and dropping
	// them there had every busy second regrow 16 MiB of arena and the
	// piece buffers from nothing (a tenth of the bastion's CPU streaming
	// binary output).
	wasBusy bool

	mu     sync.Mutex
	room   *sync.Cond // signalled when the flusher took the queue, or the recording ended
	meta   SessionMeta
	queue  []rawEvent    // events not yet taken by the flusher, in order
	arena  []byte        // their data
	last   time.Duration // last event time, so times never go backwards
	closed bool
	err    error

	failed    chan struct{}
	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewRecorder creates the session row (state active) and starts the
// flusher. ctx bounds the creation only.
func NewRecorder(ctx context.Context, cfg RecorderConfig) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, errors.New("new recorder: no store configured")
	}
	r := &Recorder{
		store:       cfg.Store,
		recordInput: cfg.RecordInput,
		now:         cfg.Now,
		log:         cfg.Logger,
		maxPending:  cfg.MaxPending,
		bg:          context.WithoutCancel(ctx),
		failed:      make(chan struct{}),
		kick:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		preparing:   make(chan struct{}, maxPreparing),
		bufs:        make(chan []byte, maxPreparing+1),
	}
	r.room = sync.NewCond(&r.mu)
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.maxPending <= 0 {
		r.maxPending = DefaultMaxPending
	}
	interval := cfg.FlushInterval
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	m := cfg.Meta
	if m.Start.IsZero() {
		m.Start = r.now()
	}
	m.State, m.End, m.ExitStatus, m.BytesOut, m.BytesIn, m.Error = StateActive, time.Time{}, nil, 0, 0, ""
	generated := m.ID == ""
	for attempt := 0; ; attempt++ {
		if generated {
			id, err := NewSessionID(m.Start, rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("new recorder: %w", err)
			}
			m.ID = id
		}
		err := cfg.Store.CreateSession(ctx, m)
		if err == nil {
			break
		}
		// A generated id can collide within one millisecond; draw again.
		if !generated || !errors.Is(err, ErrExists) || attempt == 3 {
			return nil, fmt.Errorf("new recorder: %w", err)
		}
	}
	r.meta = m
	r.id = m.ID
	r.start = m.Start
	r.log = r.log.With("session", m.ID)

	newTicker := cfg.newTicker
	if newTicker == nil {
		newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	tick, stopTick := newTicker(interval)
	go r.run(tick, stopTick)
	return r, nil
}

// ID returns the session id (useful when NewRecorder generated it).
func (r *Recorder) ID() string { return r.id }

// run is the flusher goroutine.
func (r *Recorder) run(tick <-chan time.Time, stopTick func()) {
	defer close(r.done)
	defer stopTick()
	for {
		select {
		case <-r.stop:
			return
		case <-tick:
		case <-r.kick:
		}
		// The error is already reported through Failed and Err.
		_ = r.flush(r.bg, false)
	}
}

// rawEvent is an event as it happened: its time and its bytes (in arena).
type rawEvent struct {
	at       time.Duration
	typ      byte // 'o', 'i', 'r', 'm'
	off, end int
}

// Output records bytes the session printed: as an "o" event when they are
// UTF-8 text, else as a "b" event that keeps every byte. It never keeps p;
// it waits only when MaxPending bytes are queued.
func (r *Recorder) Output(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.meta.BytesOut += int64(len(p))
	r.queueLocked('o', p)
}

// Input counts bytes the user typed and, with RecordInput, records them as
// an "i" event.
func (r *Recorder) Input(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.meta.BytesIn += int64(len(p))
	if r.recordInput {
		r.queueLocked('i', p)
	}
}

// Resize records a terminal size change as an "r" event. Sizes that are not
// positive are ignored: they are not a terminal.
func (r *Recorder) Resize(cols, rows int) {
	if cols <= 0 || rows <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.queueLocked('r', []byte(resizeData(cols, rows)))
	}
}

// Marker records a named point (an approval granted, a rule that fired) as
// an "m" event. Invalid UTF-8 in label becomes U+FFFD.
func (r *Recorder) Marker(label string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.queueLocked('m', []byte(strings.ToValidUTF8(label, replacement)))
	}
}

// queueLocked adds an event for the flusher, waiting first while the queue
// is full. r.mu is held (and released while waiting).
func (r *Recorder) queueLocked(typ byte, p []byte) {
	for r.err == nil && !r.closed && len(r.arena) > r.maxPending {
		r.kickLocked()
		r.room.Wait()
	}
	if r.err != nil || r.closed || len(p) == 0 {
		return
	}
	// Bound each event (and so each encoded line: NUL bytes take six
	// bytes of JSON) so that chunks stay far below the store's limit.
	for len(p) > maxEventBytes {
		r.queueLocked(typ, p[:maxEventBytes])
		p = p[maxEventBytes:]
	}
	off := len(r.arena)
	if off+len(p) > cap(r.arena) {
		// Double: append's steps of a quarter past 256 KiB copied a busy
		// session's arena some five times over on its way to maxPending.
		r.arena = slices.Grow(r.arena, max(len(p), cap(r.arena)))
	}
	r.arena = append(r.arena, p...)
	r.queue = append(r.queue, rawEvent{at: r.elapsedLocked(), typ: typ, off: off, end: len(r.arena)})
	if len(r.arena) >= flushThreshold {
		r.kickLocked()
	}
}

func (r *Recorder) kickLocked() {
	select {
	case r.kick <- struct{}{}:
	default: // a flush is already due
	}
}

// Failed is closed when the recording can no longer be written. With
// recording.on_failure: terminate the session ends on it.
func (r *Recorder) Failed() <-chan struct{} { return r.failed }

// Err returns why the recording failed, or nil.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// elapsedLocked returns the event time: time since start, never negative and
// never before the previous event even if the wall clock steps back.
func (r *Recorder) elapsedLocked() time.Duration {
	d := r.now().Sub(r.start).Truncate(time.Microsecond)
	d = max(d, r.last)
	r.last = d
	return d
}

// failLocked records the first failure and reports it once. r.mu is held.
func (r *Recorder) failLocked(err error) {
	if r.err != nil {
		return
	}
	r.err = err
	r.queue, r.arena = nil, nil
	r.room.Broadcast()
	close(r.failed)
	r.log.Error("session recording failed", "err", err)
}

// flush takes the queued events, encodes them as asciicast lines, has the
// store prepare them piece by piece as they are encoded, and appends the
// pieces in one commit (more than one only for output that does not
// compress). With final, the UTF-8 decoders give up what they hold (the
// stream ended mid-character).
func (r *Recorder) flush(ctx context.Context, final bool) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return err
	}
	queue, arena := r.queue, r.arena
	// Writers fill the spare buffers while these are encoded.
	r.queue, r.arena = r.spareQueue[:0], r.spareArena[:0]
	r.spareQueue, r.spareArena = nil, nil
	var tailAt time.Duration
	if final {
		tailAt = r.elapsedLocked()
	}
	r.room.Broadcast()
	r.mu.Unlock()

	busy := len(arena) >= flushThreshold
	keep := busy || r.wasBusy
	r.wasBusy = busy
	var line []byte
	if keep {
		line = r.takeBuf()
	} else {
		// An idle or interactive session (small flushes) holds no piece
		// buffers: hundreds of idle sessions would hold megabytes each.
		r.dropBufs()
		line = make([]byte, 0, len(arena)+len(arena)/4+64)
	}
	b := new(batch)
	escapes := false // whether the text output in line held an ESC byte
	for _, ev := range queue {
		data := arena[ev.off:ev.end]
		switch ev.typ {
		case 'o':
			mark := len(line)
			line = appendOutputLine(line, ev.at, data, &r.out)
			// Only "o" lines are searched for keyframes: an ESC in binary
			// output (one in 256 bytes of it) would otherwise make the
			// search scan every "b" line for its end.
			escapes = escapes || textLine(line[mark:]) && bytes.IndexByte(data, 0x1b) >= 0
		case 'i':
			line = appendEventLine(line, ev.at, ev.typ, data, &r.in, false)
		default: // 'r' and 'm' carry valid UTF-8 of their own
			var clean utf8Decoder
			line = appendEventLine(line, ev.at, ev.typ, data, &clean, true)
		}
		if len(line) >= pieceBytes {
			r.prepare(b, line, escapes)
			line, escapes = r.takeBuf(), false
			if b.stored.Load() >= maxBatchStored {
				// Binary output: append in steps rather than hold the
				// whole queue's chunks at once.
				if err := r.startAppend(ctx, b); err != nil {
					return err
				}
				b = new(batch)
			}
		}
	}
	if final {
		// The start of a character the session never finished printing.
		line = appendBinaryLine(line, tailAt, nil, &r.out)
		if r.recordInput {
			line = appendEventLine(line, tailAt, 'i', nil, &r.in, true)
		}
	}
	if len(line) > 0 {
		r.prepare(b, line, escapes)
	} else {
		r.putBuf(line)
	}
	err := r.startAppend(ctx, b)
	if final && err == nil {
		err = r.waitAppend()
	}
	// A busy session keeps its queue and arena for the next flush.
	if keep {
		r.spareQueue, r.spareArena = queue[:0], arena[:0]
	}
	return err
}

// batch is the chunks of one append, prepared in order of the pieces while
// the flusher encodes the next ones.
type batch struct {
	wg    sync.WaitGroup
	slots []*preparedPiece
	// stored is the stored size of the pieces prepared so far plus the
	// plain size of those still being prepared: close enough to
	// maxBatchStored to bound the batch.
	stored atomic.Int64
}

// preparedPiece is one piece's result, written by its preparer before
// batch.wg is done.
type preparedPiece struct {
	chunk PreparedChunk
	err   error
}

// prepare hands the encoded piece line to a preparer goroutine, after
// waiting for a free one; escapes is whether its output held an ESC byte.
// The piece's buffer comes back through putBuf. r.flushMu is held.
func (r *Recorder) prepare(b *batch, line []byte, escapes bool) {
	r.preparing <- struct{}{}
	p := new(preparedPiece)
	b.slots = append(b.slots, p)
	b.stored.Add(int64(len(line)))
	// The preparer's owner is the batch: its append waits for it.
	b.wg.Go(func() {
		defer func() { <-r.preparing }()
		p.chunk, p.err = r.store.PrepareEncoded(line, escapes)
		b.stored.Add(int64(p.chunk.Size() - len(line)))
		r.putBuf(line)
	})
}

// takeBuf returns a free piece buffer, or a new one.
func (r *Recorder) takeBuf() []byte {
	select {
	case buf := <-r.bufs:
		return buf
	default:
		return make([]byte, 0, pieceBufBytes)
	}
}

// putBuf keeps a piece buffer for the next piece, if it is one and there is
// room.
func (r *Recorder) putBuf(buf []byte) {
	if cap(buf) != pieceBufBytes {
		return
	}
	select {
	case r.bufs <- buf[:0]:
	default:
	}
}

// dropBufs lets the free piece buffers go.
func (r *Recorder) dropBufs() {
	for {
		select {
		case <-r.bufs:
		default:
			return
		}
	}
}

// startAppend waits for the append under way, then starts appending b's
// chunks as soon as they are prepared; it returns the earlier append's
// failure. r.flushMu is held.
func (r *Recorder) startAppend(ctx context.Context, b *batch) error {
	if err := r.waitAppend(); err != nil {
		b.wg.Wait()
		return err
	}
	if len(b.slots) == 0 {
		return nil
	}
	done := make(chan error, 1)
	r.inflight = done
	// The goroutine's owner is the recorder: the next flush, or Close,
	// waits for it.
	go func() { done <- r.appendBatch(ctx, b) }()
	return nil
}

// waitAppend waits for the append under way, if any, and returns its
// error. r.flushMu is held.
func (r *Recorder) waitAppend() error {
	if r.inflight == nil {
		return nil
	}
	err := <-r.inflight
	r.inflight = nil
	return err
}

// appendBatch waits for b's pieces to be prepared and appends them as the
// next chunks, in one commit.
func (r *Recorder) appendBatch(ctx context.Context, b *batch) error {
	b.wg.Wait()
	chunks := make([]PreparedChunk, len(b.slots))
	for i, p := range b.slots {
		if p.err != nil {
			return r.fail(fmt.Errorf("record session %s: %w", r.id, p.err))
		}
		chunks[i] = p.chunk
	}
	actx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	if err := r.store.AppendPrepared(actx, r.id, chunks); err != nil {
		return r.fail(fmt.Errorf("record session %s: %w", r.id, err))
	}
	return nil
}

func (r *Recorder) fail(err error) error {
	r.mu.Lock()
	r.failLocked(err)
	r.mu.Unlock()
	return err
}

// SetMasked records the session's masking counts; they are written with
// the final row.
func (r *Recorder) SetMasked(counts map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(counts) == 0 {
		r.meta.Masked = nil
		return
	}
	r.meta.Masked = make(map[string]int64, len(counts))
	for k, v := range counts {
		r.meta.Masked[k] = v
	}
}

// AddTarget notes a target the session reached after it started (chosen in
// the menu). The row's Target lists the targets in the order visited,
// comma-separated, each once; it is written with the next update.
func (r *Recorder) AddTarget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" || slices.Contains(strings.Split(r.meta.Target, ","), name) {
		return
	}
	if r.meta.Target == "" {
		r.meta.Target = name
	} else {
		r.meta.Target += "," + name
	}
}

// Close ends the recording: it stops the flusher, emits what the UTF-8
// decoders still hold (the output's as a "b" event, the input's as U+FFFD:
// the stream ended mid-character), appends the rest of the buffer and
// writes the final row with the end time, state (closed if empty, active
// or unknown), exit status, byte counts and reason (why the session ended
// abnormally, or empty).
//
// ctx bounds these final writes: pass one that is still live after the
// session ended (an SSH session's own context is cancelled by then). Close
// returns the recording failure, if there was one, and the errors of the
// final writes. Only the first call does anything; later calls return its
// result.
func (r *Recorder) Close(ctx context.Context, exitStatus *int, state State, reason string) error {
	r.closeOnce.Do(func() { r.closeErr = r.close(ctx, exitStatus, state, reason) })
	return r.closeErr
}

func (r *Recorder) close(ctx context.Context, exitStatus *int, state State, reason string) error {
	close(r.stop)
	<-r.done

	r.mu.Lock()
	r.closed = true
	r.room.Broadcast() // writers waiting for room give up: the session is over
	r.mu.Unlock()

	_ = r.flush(ctx, true) // its failure, like any earlier one, is in r.err

	r.mu.Lock()
	m := r.meta
	recErr := r.err
	r.mu.Unlock()
	if state == "" || state == StateActive || !state.valid() {
		state = StateClosed
	}
	m.State = state
	m.End = r.now()
	if exitStatus != nil {
		code := *exitStatus
		m.ExitStatus = &code
	}
	m.Error = reason
	if recErr != nil {
		m.Error = strings.TrimPrefix(reason+"; recording incomplete: "+recErr.Error(), "; ")
	}
	updateErr := r.store.UpdateSession(ctx, m)
	if updateErr != nil {
		updateErr = fmt.Errorf("close recording of session %s: %w", m.ID, updateErr)
	}
	// A failed final flush is already in recErr.
	return errors.Join(recErr, updateErr)
}
