package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/recorder"
)

// recordPiece is the size of one Output call: what the bastion's copy loop
// hands the recorder per read of the target's channel (io.Copy's 32 KiB).
const recordPiece = 32 << 10

// inFlightBudget bounds the encoded event bytes that may wait for the
// store: 6 MiB, under the recorder's 8 MiB limit (DefaultMaxPending), so the
// recorder never gives up. Each NUL of /dev/zero is the six bytes \u0000 in
// JSON, so that is 32 Output calls of zeros in flight.
const inFlightBudget = 6 << 20

// BenchmarkRecording measures the recorder on its own, in this process: a
// recorder.Recorder on a recorder.BoltStore (the server's own code: UTF-8
// clean-up, JSON event encoding, zstd, bbolt commits) fed N bytes
// (BENCH_BYTES) of zeros or random data in 32 KiB Output calls.
//
// The feeder waits while 6 MiB of encoded events have not yet reached the
// store: the back-pressure the server does not apply (the recorder fails a
// recording once 8 MiB wait). MB/s is thus the most output per second that
// the recording path of one session sustains on this machine. Also
// reported: ms/append, the mean time of one AppendChunk (zstd and a bbolt
// commit); appends/op; and stored-B/B, how many bytes bbolt's file grew per
// byte of output (an upper bound: bbolt grows its file in steps).
func BenchmarkRecording(b *testing.B) {
	n := benchBytes(b)
	logLoad(b)
	for _, s := range benchSources(b) {
		b.Run(subName("store", s), func(b *testing.B) {
			var data []byte
			if s.name == "zero" {
				data = make([]byte, recordPiece)
			} else {
				// 64 MiB of random data, cycled: chunks are compressed one
				// by one and are smaller than that, so no repeat is seen.
				data = make([]byte, min(n, 64<<20))
				_, _ = rand.Read(data)
			}
			benchRecording(b, n, data)
		})
	}
}

func benchRecording(b *testing.B, n int64, data []byte) {
	b.SetBytes(n)
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bastion.db")
	bolt, err := recorder.OpenBolt(path, recorder.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	store := &countingStore{Store: bolt, changed: make(chan struct{})}
	b.Cleanup(func() {
		if err := bolt.Close(); err != nil {
			b.Error(err)
		}
	})
	var stored, runs, appends int64
	var appendTime time.Duration
	for b.Loop() {
		stored -= fileSize(b, path)
		store.reset()
		rec, err := recorder.NewRecorder(ctx, recorder.RecorderConfig{
			Store:         store,
			Meta:          recorder.SessionMeta{User: "alice", Target: "web-1", Title: "bench"},
			FlushInterval: time.Second,
		})
		if err != nil {
			b.Fatal(err)
		}
		var off, outputs int64
		for fed := int64(0); fed < n; {
			if err := store.wait(outputs, rec.Failed()); err != nil {
				b.Fatalf("after %d bytes: %v (recorder: %v)", fed, err, rec.Err())
			}
			k := min(int64(recordPiece), n-fed)
			if off+k > int64(len(data)) {
				off = 0
			}
			rec.Output(data[off : off+k])
			off += k
			fed += k
			outputs++
		}
		exit := 0
		if err := rec.Close(ctx, &exit, recorder.StateClosed, ""); err != nil {
			b.Fatalf("recording failed: %v", err)
		}
		stored += fileSize(b, path)
		runs++
		appends += store.appends
		appendTime += store.appendTime
	}
	b.ReportMetric(float64(stored)/float64(n)/float64(runs), "stored-B/B")
	b.ReportMetric(float64(appends)/float64(runs), "appends/op")
	if appends > 0 {
		b.ReportMetric(float64(appendTime.Milliseconds())/float64(appends), "ms/append")
	}
}

// Why a fed recording stopped.
var (
	errRecordingFailed = errors.New("the recording failed although the feeder waited for the store")
	errStoreStalled    = errors.New("no event reached the store for a minute")
)

func fileSize(b *testing.B, path string) int64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// countingStore counts the event lines and bytes that reached the store,
// so that the feeder knows how much is still waiting for it: each Output of
// a whole piece of data is one event line (JSON escapes every newline in
// it). It also times the appends.
type countingStore struct {
	recorder.Store

	mu         sync.Mutex
	events     int64
	bytes      int64
	appends    int64
	appendTime time.Duration
	changed    chan struct{} // closed and replaced after each append
}

// AppendChunk stores the chunk and counts it.
func (s *countingStore) AppendChunk(ctx context.Context, id string, events []byte) error {
	start := time.Now()
	err := s.Store.AppendChunk(ctx, id, events)
	took := time.Since(start)
	s.mu.Lock()
	s.events += int64(bytes.Count(events, []byte{'\n'}))
	s.bytes += int64(len(events))
	s.appends++
	s.appendTime += took
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return err
}

// reset zeroes the counters for the next recording.
func (s *countingStore) reset() {
	s.mu.Lock()
	s.events, s.bytes, s.appends, s.appendTime = 0, 0, 0, 0
	s.mu.Unlock()
}

// wait returns once the events of outputs Output calls that have not yet
// reached the store are estimated below inFlightBudget bytes (at the mean
// size of the events stored so far; before the first, at six bytes per
// input byte, the most JSON makes of one), or when the recording failed,
// or after a minute without progress.
func (s *countingStore) wait(outputs int64, failed <-chan struct{}) error {
	for {
		s.mu.Lock()
		perEvent := int64(6*recordPiece + 64)
		if s.events > 0 {
			perEvent = s.bytes/s.events + 1
		}
		waiting, changed := outputs-s.events, s.changed
		s.mu.Unlock()
		if waiting*perEvent < inFlightBudget {
			return nil
		}
		select {
		case <-changed:
		case <-failed:
			return errRecordingFailed
		case <-time.After(time.Minute):
			return errStoreStalled
		}
	}
}
