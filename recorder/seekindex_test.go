package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestIndexChunk(t *testing.T) {
	tests := []struct {
		name    string
		evs     []Event
		keyLine int // index of the event line expected as keyframe, -1 none
	}{
		{"no clear", []Event{{0.5, "o", "hello"}, {1, "o", "\x1b[2J"}}, -1}, // a clear without home is not a keyframe
		{"ncurses clear", []Event{{0.5, "o", "a"}, {1.25, "o", "x\x1b[H\x1b[2Jscreen"}, {2, "o", "b"}}, 1},
		{"home erase below", []Event{{1, "o", "\x1b[H\x1b[J"}}, 0},
		{"clear then home", []Event{{1, "o", "\x1b[2J\x1b[1;1H"}, {3, "o", "z"}}, 0},
		{"full reset", []Event{{1, "o", "a"}, {2, "o", "\x1bc"}}, 1},
		{"last of two", []Event{{1, "o", "\x1b[H\x1b[2J"}, {2, "o", "\x1bc"}, {3, "o", "tail"}}, 1},
		{"typed clear is not shown", []Event{{1, "o", "\x1b[H\x1b[2J"}, {2, "i", "\x1b[H\x1b[2J"}}, 0},
		{"text that spells an escape", []Event{{1, "o", `\u001b[H\u001b[2J`}}, -1},
		{"marker", []Event{{1, "m", "\x1bc"}}, -1},
		{"between binary output", []Event{{1, "b", "\xff\x1b[H\x1b[2J"}, {2, "o", "\x1bc"}, {3, "b", "\xfe"}, {4, "o", "z"}}, 1},
		{"binary output is not searched", []Event{{1, "o", "\x1bc"}, {2, "b", "\x1bc\xff"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := eventLines(t, tt.evs...)
			info, err := IndexChunk(7, lines)
			if err != nil {
				t.Fatal(err)
			}
			if info.Seq != 7 || info.Bytes != len(lines) || info.Start != tt.evs[0].Time || info.End != tt.evs[len(tt.evs)-1].Time {
				t.Errorf("info = %+v; want seq 7, %d bytes, %v..%v", info, len(lines), tt.evs[0].Time, tt.evs[len(tt.evs)-1].Time)
			}
			if tt.keyLine < 0 {
				if info.HasKeyframe() {
					t.Errorf("keyframe at %d; want none", info.Keyframe)
				}
				return
			}
			want := len(eventLines(t, tt.evs[:tt.keyLine]...))
			if info.Keyframe != want || info.KeyTime != tt.evs[tt.keyLine].Time {
				t.Errorf("keyframe at %d (%v); want %d (%v)", info.Keyframe, info.KeyTime, want, tt.evs[tt.keyLine].Time)
			}
		})
	}
	for _, bad := range []string{"", "\n", "[x,\"o\",\"a\"]\n", "{}\n"} {
		if _, err := IndexChunk(1, []byte(bad)); err == nil {
			t.Errorf("IndexChunk(%q) accepted", bad)
		}
	}
}

func TestChunkIndexStoredAndRebuilt(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.CreateSession(ctx, activeMeta("seek1", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	chunks := [][]Event{
		{{0, "o", "one"}, {1, "o", "two"}},
		{{2, "o", "\x1b[H\x1b[2Jthree"}, {3, "o", "four"}},
		{{4, "o", "five"}},
	}
	for _, c := range chunks {
		if err := s.AppendChunk(ctx, "seek1", eventLines(t, c...)); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.ChunkIndex(ctx, "seek1")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 3 || stored[1].Start != 2 || stored[1].Keyframe != 0 || stored[0].HasKeyframe() || stored[2].End != 4 {
		t.Fatalf("index = %+v", stored)
	}
	for i, c := range stored {
		lines, err := s.ReadChunk(ctx, "seek1", c.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(lines, eventLines(t, chunks[i]...)) {
			t.Errorf("chunk %d = %q", c.Seq, lines)
		}
	}
	// A recording stored before the index existed: the index is built
	// from the chunks, the same, and cached.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketChunkIndex) }); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := s.ChunkIndex(ctx, "seek1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rebuilt) != len(stored) {
		t.Fatalf("rebuilt %d entries; want %d", len(rebuilt), len(stored))
	}
	for i := range stored {
		if rebuilt[i] != stored[i] {
			t.Errorf("entry %d rebuilt as %+v; stored %+v", i, rebuilt[i], stored[i])
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketChunkIndex); b == nil || b.Bucket([]byte("seek1")) == nil {
			return errors.New("rebuilt index not cached")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if _, err := s.ChunkIndex(ctx, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChunkIndex(nosuch) = %v; want ErrNotFound", err)
	}
	if _, err := s.ReadChunk(ctx, "seek1", 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadChunk(99) = %v; want ErrNotFound", err)
	}
	// Pruning the session takes its index too.
	m, _ := s.Session(ctx, "seek1")
	m.State, m.End = StateClosed, t0.Add(time.Hour)
	if err := s.UpdateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketChunkIndex).Bucket([]byte("seek1")) != nil {
			return errors.New("index of a pruned session left behind")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestChunkIndexDamagedChunk(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.CreateSession(ctx, activeMeta("dmg", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendChunk(ctx, "dmg", eventLines(t, Event{0, "o", "x"})); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketChunkIndex); err != nil {
			return err
		}
		return tx.Bucket(bucketEvents).Bucket([]byte("dmg")).Put(u64key(1), []byte("not zstd"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChunkIndex(ctx, "dmg"); err == nil {
		t.Error("ChunkIndex of a damaged chunk succeeded")
	}
}

// BenchmarkIndexChunk is the seek index's cost on the write path: one
// second of output (about 55 KB of event lines, as the recorder flushes
// it), which AppendChunk indexes before compressing. logs are busy coloured
// log lines (two escapes a line), plain-logs the same without colour; nul
// is NUL bytes, each spelt \u0000, the worst case for a search for \u001b;
// random is binary output.
func BenchmarkIndexChunk(b *testing.B) {
	logs := func(i int) string {
		var sb strings.Builder
		for sb.Len() < 4<<10 {
			fmt.Fprintf(&sb, "2026-12-01T09:00:00.%03dZ \x1b[32mINFO\x1b[0m request id=%08x status=200\r\n", i, sb.Len())
		}
		return sb.String()
	}
	plain := func(i int) string {
		var sb strings.Builder
		for sb.Len() < 4<<10 {
			fmt.Fprintf(&sb, "2026-12-01T09:00:00.%03dZ INFO served path=/api/v1/items client=10.1.%d.7 req=%08x status=200 bytes=5100 dur=12ms\r\n", i, i, sb.Len())
		}
		return sb.String()
	}
	nul := func(int) string { return strings.Repeat("\x00", 4<<10) }
	random := func(i int) string {
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		b := make([]byte, 4<<10)
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		return string(b)
	}
	for _, c := range []struct {
		name string
		data func(int) string
	}{{"logs", logs}, {"plain-logs", plain}, {"nul", nul}, {"random", random}} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			for i := range 14 {
				if err := encodeEvent(&buf, Event{Time: float64(i) * 0.07, Type: EventOutput, Data: c.data(i)}); err != nil {
					b.Fatal(err)
				}
			}
			lines := buf.Bytes()
			b.SetBytes(int64(len(lines)))
			for b.Loop() {
				if _, err := IndexChunk(1, lines); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzLastNewline holds lastNewline to bytes.LastIndexByte.
func FuzzLastNewline(f *testing.F) {
	f.Add([]byte("[1,\"o\",\"a\"]\n[2,\"o\",\"\\u0000\\u0000\\u0000\\u0000\"]\n"))
	f.Add([]byte("no newline at all, longer than a word"))
	f.Add([]byte("\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := lastNewline(b), bytes.LastIndexByte(b, '\n'); got != want {
			t.Fatalf("lastNewline(%q) = %d, want %d", b, got, want)
		}
	})
}

// FuzzIndexChunk holds IndexChunk's keyframe search (a skip to each 'b',
// then a filter on the bytes after the escape) to the plain one: every
// \u001b, every pattern, the last match wins.
func FuzzIndexChunk(f *testing.F) {
	f.Add([]byte("ls\r\n\x1b[H\x1b[2Jtop\x1b[32mok\x1b[0m"), []byte("\x00\x1bc"), uint8(3))
	f.Add([]byte("\\u001b[2J \x1b[1;1H\x1b[J"), []byte("b\x1b[2J\x1b[H"), uint8(0))
	f.Add([]byte("\x1b[H\x1b[2J\xff"), []byte("\x1bc"), uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, n uint8) {
		var d utf8Decoder
		var lines []byte
		for k, p := range [][]byte{a, b, a[:len(a)/2]} {
			typ := byte('o')
			if int(n)%3 == k {
				typ = 'i'
			}
			at := time.Duration(k) * time.Second
			if typ == 'o' {
				lines = appendOutputLine(lines, at, p, &d) // text or binary, as recorded
			} else {
				lines = appendEventLine(lines, at, typ, p, &d, k == 2)
			}
		}
		if len(lines) == 0 {
			return
		}
		got, err := IndexChunk(1, lines)
		if err != nil {
			t.Fatalf("IndexChunk of the recorder's own lines %q: %v", lines, err)
		}
		wantKey, wantTime := -1, 0.0
		for i := 0; ; i++ {
			j := bytes.Index(lines[i:], jsonESC)
			if j < 0 {
				break
			}
			i += j
			for _, pat := range keyframePatterns {
				if bytes.HasPrefix(lines[i:], pat) {
					if ls, lt, ok := keyframeAt(lines, i); ok {
						wantKey, wantTime = ls, lt
					}
					break
				}
			}
		}
		if got.Keyframe != wantKey || (wantKey >= 0 && got.KeyTime != wantTime) {
			t.Fatalf("keyframe of %q: got %d at %v, want %d at %v", lines, got.Keyframe, got.KeyTime, wantKey, wantTime)
		}
	})
}
