//go:build goexperiment.simd && amd64

package recorder

import (
	"math/bits"
	"simd/archsimd"

	"github.com/bastion-dev/bastion/internal/vecstate"
)

// plainBlock is the width of copyPlain's step, and 0 where there is none.
var plainBlock = func() int {
	if archsimd.X86.AVX2() {
		return 32
	}
	return 0
}()

// copyPlain copies the 32 bytes of src to dst and returns how many of them,
// from the first, are jsonPlain: a line of text in three or four steps,
// where the word path takes fourteen. A byte is plain when, read as a
// signed byte, it is above 0x1F (which leaves out the controls and every
// byte with the high bit) and is neither '"' nor '\'.
func copyPlain(dst, src *[32]byte) int {
	x := archsimd.LoadUint8x32(src)
	s := x.AsInt8x32()
	printable := s.Greater(archsimd.BroadcastInt8x32(0x1F)).ToBits()
	special := s.Equal(archsimd.BroadcastInt8x32('"')).Or(s.Equal(archsimd.BroadcastInt8x32('\\'))).ToBits()
	x.Store(dst)
	return bits.TrailingZeros32(^(printable &^ special))
}

// endPlain follows copyPlain's steps: legacy-SSE code run next on this
// thread (the S2 encoder, AES-NI) would otherwise pay for the dirty upper
// halves of the vector registers (internal/vecstate).
func endPlain() { vecstate.Clear() }
