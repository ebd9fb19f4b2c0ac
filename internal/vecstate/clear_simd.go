//go:build goexperiment.simd && amd64

package vecstate

import "simd/archsimd"

// Clear zeroes the upper halves of the vector registers (VZEROUPPER) when
// the CPU has AVX; elsewhere it does nothing.
func Clear() {
	if archsimd.X86.AVX() {
		archsimd.ClearAVXUpperBits()
	}
}
