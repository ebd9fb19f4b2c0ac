package bench

import (
	"context"
	"crypto/rand"
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

// BenchmarkRecording measures the recorder on its own, in this process: a
// recorder.Recorder on a recorder.BoltStore (the server's own code: UTF-8
// clean-up, asciicast JSON encoding, zstd, bbolt commits) fed N bytes
// (BENCH_BYTES) of zeros or random data in 32 KiB Output calls, as fast as
// the recorder takes them (Output waits once DefaultMaxPending bytes are
// queued: the back-pressure that slows a session to the store's speed).
//
// MB/s is thus the most output per second that the recording of one
// session sustains on this machine. Also reported: ms/append, the mean time
// of one AppendPrepared (a bbolt group commit; zstd ran before, piece by
// piece, as the lines were encoded); appends/op; and stored-B/B,
// how many bytes bbolt's file grew per byte of output (an upper bound:
// bbolt grows its file in steps).
func BenchmarkRecording(b *testing.B) {
	n := benchBytes(b)
	logLoad(b)
	for _, s := range benchSources(b) {
		b.Run(subName("store", s), func(b *testing.B) {
			var data []byte
			switch s.name {
			case "zero":
				data = make([]byte, recordPiece)
			case "text":
				data = logText(64 << 20)
			default:
				// 64 MiB of random data, cycled: chunks are compressed one
				// by one and are smaller than that, so no repeat is seen.
				data = make([]byte, min(n, 64<<20))
				_, _ = rand.Read(data)
			}
			benchRecording(b, n, data)
		})
	}
}

// benchRecording records n bytes of data (cycled) per iteration, each time
// as a new session in one store, and fails if a recording fails.
func benchRecording(b *testing.B, n int64, data []byte) {
	b.SetBytes(n)
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bastion.db")
	bolt, err := recorder.OpenBolt(path, recorder.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := bolt.Close(); err != nil {
			b.Error(err)
		}
	})
	store := &timedStore{Store: bolt}
	var stored, runs int64
	for b.Loop() {
		stored -= fileSize(b, path)
		rec, err := recorder.NewRecorder(ctx, recorder.RecorderConfig{
			Store:         store,
			Meta:          recorder.SessionMeta{User: "alice", Target: "web-1", Title: "bench"},
			FlushInterval: time.Second,
		})
		if err != nil {
			b.Fatal(err)
		}
		var off int64
		for fed := int64(0); fed < n; {
			k := min(int64(recordPiece), n-fed)
			if off+k > int64(len(data)) {
				off = 0
			}
			rec.Output(data[off : off+k])
			off += k
			fed += k
		}
		exit := 0
		if err := rec.Close(ctx, &exit, recorder.StateClosed, ""); err != nil {
			b.Fatalf("recording failed: %v", err)
		}
		stored += fileSize(b, path)
		runs++
	}
	appends, took := store.totals()
	b.ReportMetric(float64(stored)/float64(n)/float64(runs), "stored-B/B")
	b.ReportMetric(float64(appends)/float64(runs), "appends/op")
	if appends > 0 {
		b.ReportMetric(float64(took.Microseconds())/1e3/float64(appends), "ms/append")
	}
}

func fileSize(b *testing.B, path string) int64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// timedStore counts and times the appends that reach the store.
type timedStore struct {
	recorder.Store

	mu      sync.Mutex
	appends int64
	took    time.Duration
}

// AppendPrepared stores the chunks and times it: the recorder's flushes
// arrive here.
func (s *timedStore) AppendPrepared(ctx context.Context, id string, chunks []recorder.PreparedChunk) error {
	start := time.Now()
	err := s.Store.AppendPrepared(ctx, id, chunks)
	took := time.Since(start)
	s.mu.Lock()
	s.appends++
	s.took += took
	s.mu.Unlock()
	return err
}

// totals returns how many appends there were and how long they took.
func (s *timedStore) totals() (int64, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends, s.took
}
