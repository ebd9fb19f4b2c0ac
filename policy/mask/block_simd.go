//go:build goexperiment.simd && amd64

package mask

import "simd/archsimd"

// haveSIMD: this build has the SIMD classifier, and the CPU runs it.
// VPERMI2B (AVX-512 VBMI) looks a byte up in a 128-entry table in one
// instruction, which is the whole class table for ASCII.
var haveSIMD = archsimd.X86.AVX512VBMI()

// simdTables is Engine.cls for ASCII laid out for the classifier, 64
// entries per vector. Bytes from 0x80 on have no class but clStop for the
// three that may start a zero-width character, which the classifier
// compares for instead.
type simdTables struct {
	lo, hi [64]uint8
}

// prepareSIMD copies the class table into the vector layout.
func (e *Engine) prepareSIMD() {
	copy(e.vec.lo[:], e.cls[0x00:0x40])
	copy(e.vec.hi[:], e.cls[0x40:0x80])
}

// classifier classifies blocks for one blockRun call: the table vectors
// are loaded once, not once per block.
type classifier struct {
	e      *Engine
	lo, hi archsimd.Uint8x64
}

// classifier returns a classifier for e.
func (e *Engine) classifier() classifier {
	c := classifier{e: e}
	if e.simd {
		c.lo = archsimd.LoadUint8x64(&e.vec.lo)
		c.hi = archsimd.LoadUint8x64(&e.vec.hi)
	}
	return c
}

// masks classifies p[:min(len(p), 64)].
func (c *classifier) masks(p []byte) blockMasks {
	if !c.e.simd {
		return c.e.masksScalar(p)
	}
	n := min(len(p), 64)
	var v archsimd.Uint8x64
	if n == 64 {
		v = archsimd.LoadUint8x64Slice(p)
	} else {
		v = archsimd.LoadUint8x64SlicePart(p[:n])
	}
	cls := c.lo.ConcatPermute(c.hi, v) // by the low seven bits
	zero := archsimd.BroadcastUint8x64(0)
	// A signed Less on the bytes would say "from 0x80 on" too, but costs
	// four times as much as this test of the top bit.
	// Bytes from 0x80 on got an ASCII byte's class: drop it.
	ascii := ^v.And(archsimd.BroadcastUint8x64(0x80)).NotEqual(zero).ToBits()
	if n < 64 {
		ascii &= 1<<n - 1
	}
	lead := v.Equal(archsimd.BroadcastUint8x64(0xc2)).ToBits() |
		v.Equal(archsimd.BroadcastUint8x64(0xe2)).ToBits() |
		v.Equal(archsimd.BroadcastUint8x64(0xef)).ToBits()
	// One test per class; written out, since a closure over a vector
	// costs the compiler its registers.
	m := blockMasks{
		digit: cls.And(archsimd.BroadcastUint8x64(clDigit)).NotEqual(zero).ToBits() & ascii,
		chain: cls.And(archsimd.BroadcastUint8x64(clChain)).NotEqual(zero).ToBits() & ascii,
		stop:  cls.And(archsimd.BroadcastUint8x64(clStop)).NotEqual(zero).ToBits()&ascii | lead,
		sep:   cls.And(archsimd.BroadcastUint8x64(clSep)).NotEqual(zero).ToBits() & ascii,
		last:  cls.And(archsimd.BroadcastUint8x64(clLast)).NotEqual(zero).ToBits() & ascii,
		two:   v.Equal(archsimd.BroadcastUint8x64('2')).ToBits(),
		space: v.Equal(archsimd.BroadcastUint8x64(' ')).ToBits(),
		dot:   v.Equal(archsimd.BroadcastUint8x64('.')).ToBits(),
	}
	// The rest of the program is SSE code: without VZEROUPPER, each switch
	// from 512-bit code to it stalls the core.
	archsimd.ClearAVXUpperBits()
	return m
}
