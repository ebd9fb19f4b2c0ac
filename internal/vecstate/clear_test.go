package vecstate

import (
	"crypto/sha256"
	"testing"
)

// TestClearKeepsValues: clearing the upper halves leaves what Go code holds
// intact (Go keeps no vector values across calls), however often it runs.
func TestClearKeepsValues(t *testing.T) {
	data := []byte("the recording's event lines")
	want := sha256.Sum256(data)
	for range 1000 {
		Clear()
	}
	h := sha256.New()
	for i := range data {
		Clear()
		h.Write(data[i : i+1])
	}
	if got := h.Sum(nil); string(got) != string(want[:]) {
		t.Fatalf("digest with Clear between writes = %x, want %x", got, want)
	}
}
