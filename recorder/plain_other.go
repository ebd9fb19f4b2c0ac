//go:build !(goexperiment.simd && amd64)

package recorder

// plainBlock is 0: this build has no vector step, and the word path of
// appendText does all the work.
const plainBlock = 0

// copyPlain is the vector step's contract in plain Go (appendText does not
// call it where plainBlock is 0): it copies src to dst and returns how many
// of its bytes, from the first, are jsonPlain.
func copyPlain(dst, src *[32]byte) int {
	*dst = *src
	for i, c := range src {
		if !jsonPlain[c] {
			return i
		}
	}
	return len(src)
}

// endPlain does nothing without a vector step.
func endPlain() {}
