package recorder

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRecorderOutput measures the recording cost per output byte, store
// included, for the worst case (NUL bytes: six bytes of JSON each) and for
// text.
func BenchmarkRecorderOutput(b *testing.B) {
	text := bytes.Repeat([]byte("2026-12-01T09:00:00Z INFO request served path=/api/v1/items status=200 in 3.2ms\n"), 500)
	rnd := make([]byte, 32<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.UintN(256))
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"zeros", make([]byte, 32<<10)}, {"text", text[:32<<10]}, {"random", rnd}} {
		b.Run(c.name, func(b *testing.B) {
			st, err := OpenBolt(filepath.Join(b.TempDir(), "b.db"), BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			rec, err := NewRecorder(context.Background(), RecorderConfig{Store: st,
				Meta:          SessionMeta{ID: "bench", User: "u", Start: time.Now(), State: StateActive, Width: 80, Height: 24},
				FlushInterval: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(c.data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec.Output(c.data)
			}
			if err := rec.Close(context.Background(), nil, StateClosed, ""); err != nil {
				b.Fatal(err)
			}
		})
	}
}
