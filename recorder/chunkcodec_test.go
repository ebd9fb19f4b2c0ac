package recorder

import (
	"bytes"
	"crypto/rand"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func TestRawFrameDecodesWithZstd(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, n := range []int{0, 1, 1000, rawBlockBytes - 1, rawBlockBytes, rawBlockBytes + 1, 3*rawBlockBytes + 17} {
		src := make([]byte, n)
		_, _ = rand.Read(src)
		frame := appendRawFrame([]byte("prefix"), src)
		if !bytes.HasPrefix(frame, []byte("prefix")) {
			t.Fatalf("%d bytes: appendRawFrame lost what dst held", n)
		}
		got, err := dec.DecodeAll(frame[len("prefix"):], nil)
		if err != nil {
			t.Fatalf("%d bytes: zstd refuses the raw frame: %v", n, err)
		}
		if !bytes.Equal(got, src) {
			t.Fatalf("%d bytes: raw frame decodes to other bytes", n)
		}
		if n > 0 {
			// The checksum finds damage, as in a compressed frame.
			damaged := bytes.Clone(frame[len("prefix"):])
			damaged[len(damaged)-5] ^= 1
			if _, err := dec.DecodeAll(damaged, nil); err == nil {
				t.Fatalf("%d bytes: a damaged raw frame decodes without error", n)
			}
		}
	}
}

func TestChunkCodec(t *testing.T) {
	c, err := newChunkCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	random := make([]byte, 1<<20)
	_, _ = rand.Read(random)
	var d utf8Decoder
	tests := []struct {
		name    string
		piece   []byte
		wantRaw bool
	}{
		{"terminal text", []byte(strings.Repeat(`[1.5,"o","$ ls -l\r\ntotal 12\r\n-rw-r--r-- 1 alice staff 5123 Dec  1 14:16 notes.txt\r\n"]`+"\n", 40000)), false},
		{"zeros", appendEventLine(nil, 0, 'o', make([]byte, 1<<20), &d, false), false},
		{"binary output", appendEventLine(nil, 0, 'o', random, &d, false), true},
		{"small binary piece", appendEventLine(nil, 0, 'o', random[:1000], &d, false), false},
		{"one line", []byte(`[1,"o","x"]` + "\n"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := c.encode(tt.piece)
			if raw := bytes.HasPrefix(stored, []byte{0x28, 0xB5, 0x2F, 0xFD}); raw != tt.wantRaw {
				t.Fatalf("stored %d bytes for %d: a raw zstd frame = %v, want %v", len(stored), len(tt.piece), raw, tt.wantRaw)
			}
			if !tt.wantRaw && !bytes.HasPrefix(stored, s2Magic) {
				t.Fatalf("stored %d bytes for %d: not an S2 stream", len(stored), len(tt.piece))
			}
			got, err := c.decode(stored, []byte("kept"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("kept")) || !bytes.Equal(got[4:], tt.piece) {
				t.Fatal("stored piece decodes to other bytes, or dst was not kept")
			}
			// Damage anywhere is found: each format checks its content.
			damaged := bytes.Clone(stored)
			damaged[len(damaged)/2] ^= 0x10
			if _, err := c.decode(damaged, nil); err == nil {
				t.Fatal("a damaged chunk decodes without error")
			}
		})
	}
}

// TestChunkCodecReadsZstd: chunks that stores wrote before S2 (zstd frames,
// one or more) read as before.
func TestChunkCodecReadsZstd(t *testing.T) {
	c, err := newChunkCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	a, b := []byte(strings.Repeat(`[1,"o","hello"]`+"\n", 9000)), []byte(`[2,"o","world"]`+"\n")
	stored := enc.EncodeAll(b, enc.EncodeAll(a, nil))
	got, err := c.decode(stored, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(a), b...); !bytes.Equal(got, want) {
		t.Fatalf("two zstd frames decode to %d bytes, want %d", len(got), len(want))
	}
}

// TestChunkCodecBound: an S2 chunk that decodes to more than maxDecodedChunk
// (damage, or a store not written by us) is refused, not inflated.
func TestChunkCodecBound(t *testing.T) {
	c, err := newChunkCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var big bytes.Buffer
	w := s2.NewWriter(&big)
	if _, err := w.Write(make([]byte, maxDecodedChunk+1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.decode(big.Bytes(), nil); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("decode of %d bytes compressed from %d: err = %v, want a refusal", big.Len(), maxDecodedChunk+1, err)
	}
}

// TestSmallPieceEncodeMemory: a piece that fits one small block is encoded
// by a writer of small blocks, so that a flush of a few bytes (an idle
// session's) allocates kilobytes, not the 2 MiB of a writer of s2BlockBytes
// blocks; and its stream is the one the large writer makes.
func TestSmallPieceEncodeMemory(t *testing.T) {
	piece := bytes.Repeat([]byte(`[0.5,"o","$ tail -f /var/log/app.log\r\n"]`+"\n"), 40)
	for _, n := range []int{1, len(piece), s2SmallBlockBytes} {
		p := bytes.Repeat(piece, n/len(piece)+1)[:n]
		c, err := newChunkCodec()
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got := c.encode(p)
		runtime.ReadMemStats(&after)
		c.close()
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*s2SmallBlockBytes {
			t.Errorf("encoding %d bytes with a new codec allocated %d bytes, want at most %d", n, alloc, 4*s2SmallBlockBytes)
		}
		var want bytes.Buffer
		w := s2.NewWriter(&want, s2.WriterConcurrency(1), s2.WriterBlockSize(s2BlockBytes))
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%d bytes: the stream differs from the large writer's (%d against %d bytes)", n, len(got), want.Len())
		}
	}
}
