package recorder

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

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

func TestCompressPieceChoosesRawForBinaryOutput(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	random := make([]byte, 1<<20)
	_, _ = rand.Read(random)
	var d utf8Decoder
	tests := []struct {
		name    string
		piece   []byte
		wantRaw bool
	}{
		{"terminal text", []byte(strings.Repeat(`[1.5,"o","$ ls -l\r\ntotal 12\r\n-rw-r--r-- 1 alice staff 5123 Dec  1 14:16 notes.txt\r\n"]`+"\n", 4000)), false},
		{"zeros", appendEventLine(nil, 0, 'o', make([]byte, 1<<20), &d, false), false},
		{"binary output", appendEventLine(nil, 0, 'o', random, &d, false), true},
		{"small binary piece", appendEventLine(nil, 0, 'o', random[:1000], &d, false), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := compressPiece(enc, tt.piece)
			// A raw frame is the piece plus a few bytes of headers.
			if raw := len(stored) > len(tt.piece); raw != tt.wantRaw {
				t.Fatalf("stored %d bytes for %d: raw = %v, want %v", len(stored), len(tt.piece), raw, tt.wantRaw)
			}
			got, err := dec.DecodeAll(stored, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.piece) {
				t.Fatal("stored piece decodes to other bytes")
			}
		})
	}
}
