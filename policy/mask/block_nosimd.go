//go:build !(goexperiment.simd && amd64)

package mask

// haveSIMD: this build has no SIMD classifier (build with
// GOEXPERIMENT=simd on amd64 for it; the Makefile does).
const haveSIMD = false

// simdTables is empty without the SIMD classifier.
type simdTables struct{}

func (e *Engine) prepareSIMD() {}

// classifier classifies blocks one byte at a time in this build.
type classifier struct{ e *Engine }

// classifier returns a classifier for e.
func (e *Engine) classifier() classifier { return classifier{e: e} }

// masks classifies the blocks of p from at on into out, as many as fit,
// and returns how many.
func (c *classifier) masks(p []byte, at int, out []blockMasks) int {
	return c.e.masksScalarBatch(p, at, out)
}
