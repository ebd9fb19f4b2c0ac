package mask

import (
	"math/rand/v2"
	"testing"
)

// TestStreamProperties runs the FuzzStream properties on generated inputs,
// so that they hold in every plain `go test` run too.
func TestStreamProperties(t *testing.T) {
	e := mustNew(t, allDetectors)
	n := 3000
	if testing.Short() {
		n = 300
	}
	for seed := 0; seed < n; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		in, ps := buildInput(r, randJunk(r, r.IntN(200)), 1+r.IntN(4))
		checkStream(t, e, r, in, ps)
	}
}
