//go:build !(goexperiment.simd && amd64)

package recorder

// plainBlock is 0: this build has no vector step, and the word path of
// appendText does all the work.
const plainBlock = 0

// copyPlain is not called where plainBlock is 0.
func copyPlain(dst, src *[32]byte) int {
	panic("recorder: copyPlain without a vector step")
}

// endPlain does nothing without a vector step.
func endPlain() {}
