//go:build goexperiment.simd && amd64

package mask

import "simd/archsimd"

// haveSIMD: this build has the SIMD classifier, and the CPU runs it: it
// needs AVX-512 VBMI (VPERMB, VPERMI2B) and GFNI (VGF2P8AFFINEQB).
var haveSIMD = archsimd.X86.AVX512VBMI() && archsimd.X86.AVX512GFNI()

// simdTables holds Engine.cls for ASCII and the constants of masks, laid
// out as vectors.
type simdTables struct {
	lo, hi [64]uint8 // class of bytes 0x00–0x3F and 0x40–0x7F
	rev    [64]uint8 // reverses the bytes of each 8-byte group
	unit   [64]uint8 // byte k is 1 << (k % 8)
	tr     [64]uint8 // transposes 8×8 bytes
}

// prepareSIMD fills the vector layout.
func (e *Engine) prepareSIMD() {
	t := &e.vec
	copy(t.lo[:], e.cls[0x00:0x40])
	copy(t.hi[:], e.cls[0x40:0x80])
	for k := range 64 {
		hi, lo := k/8, k%8
		t.rev[k] = uint8(hi*8 + 7 - lo)
		t.unit[k] = 1 << lo
		t.tr[k] = uint8(lo*8 + hi) // out[k] = in[tr[k]]: row and column swap
	}
}

// classifier classifies blocks. The constant vectors stay in memory
// (Engine.vec) and are loaded in masks: held in the struct they would be
// 512-bit values on the stack, and every blockRun call would pay for
// moving them and for leaving 512-bit state behind in SSE code.
type classifier struct{ e *Engine }

// classifier returns a classifier for e.
func (e *Engine) classifier() classifier { return classifier{e: e} }

// masks classifies p[:min(len(p), 64)].
//
// One table lookup gives each byte's class bits (VPERMI2B, by the low
// seven bits); a bit-matrix transpose of each 8-byte group (VGF2P8AFFINEQB
// against unit vectors, which reverses the byte order, undone beforehand)
// and a byte transpose (VPERMB) turn the 64 class bytes into eight 64-bit
// masks, one per class, in five vector instructions.
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
	tb := &c.e.vec
	cls := archsimd.LoadUint8x64(&tb.lo).ConcatPermute(archsimd.LoadUint8x64(&tb.hi), v.Permute(archsimd.LoadUint8x64(&tb.rev)))
	t := archsimd.LoadUint8x64(&tb.unit).GaloisFieldAffineTransform(cls.AsUint64x8(), 0).Permute(archsimd.LoadUint8x64(&tb.tr))
	var out [8]uint64
	t.AsUint64x8().Store(&out)
	zero := archsimd.BroadcastUint8x64(0)
	// Bytes from 0x80 on got an ASCII byte's class: drop it. Past n, the
	// zero padding is no input.
	high := v.And(archsimd.BroadcastUint8x64(0x80)).NotEqual(zero).ToBits()
	if n < 64 {
		high |= ^uint64(0) << n
	}
	lead := v.Equal(archsimd.BroadcastUint8x64(0xc2)).ToBits() |
		v.Equal(archsimd.BroadcastUint8x64(0xe2)).ToBits() |
		v.Equal(archsimd.BroadcastUint8x64(0xef)).ToBits()
	// The rest of the program is SSE code: without VZEROUPPER, each switch
	// from 512-bit code to it stalls the core.
	archsimd.ClearAVXUpperBits()
	return blockMasks{
		digit: out[0] &^ high,
		chain: out[1] &^ high,
		stop:  out[2]&^high | lead,
		sep:   out[3] &^ high,
		last:  out[4] &^ high,
		two:   out[5] &^ high,
		space: out[6] &^ high,
		dot:   out[7] &^ high,
	}
}
