//go:build goexperiment.simd && amd64

package mask

import (
	"simd/archsimd"
	"unsafe"
)

// haveSIMD: this build has the SIMD classifier, and the CPU runs it: it
// needs AVX-512 VBMI (VPERMB, VPERMI2B) and GFNI (VGF2P8AFFINEQB).
var haveSIMD = archsimd.X86.AVX512VBMI() && archsimd.X86.AVX512GFNI()

// simdTables holds Engine.cls for ASCII and the constants of masks, laid
// out as vectors.
type simdTables struct {
	lo, hi [64]uint8    // class of bytes 0x00–0x3F and 0x40–0x7F
	rev    [64]uint8    // reverses the bytes of each 8-byte group
	unit   [64]uint8    // byte k is 1 << (k % 8)
	tr     [64]uint8    // transposes 8×8 bytes
	tail   [2][64]uint8 // tailSet, for VPERMI2B
}

// prepareSIMD fills the vector layout.
func (e *Engine) prepareSIMD() {
	t := &e.vec
	copy(t.lo[:], e.cls[0x00:0x40])
	copy(t.hi[:], e.cls[0x40:0x80])
	copy(t.tail[0][:], tailSet[:64])
	copy(t.tail[1][:], tailSet[64:])
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

// masks classifies the blocks of p, 64 bytes each (the last may be
// shorter), into out, as many as fit, and returns how many.
//
// One table lookup gives each byte's class bits (VPERMI2B, by the low
// seven bits); a bit-matrix transpose of each 8-byte group (VGF2P8AFFINEQB
// against unit vectors, which reverses the byte order, undone beforehand)
// and a byte transpose (VPERMB) turn the 64 class bytes into the eight
// 64-bit masks, which are stored straight into out.
//
// It works on a batch because leaving 512-bit code is what costs: the
// program around it is SSE code, which without VZEROUPPER stalls on the
// dirty upper halves of the registers, and VZEROUPPER with the reloading of
// the constants after it costs more than classifying a block. So the
// constants are loaded, and the upper state cleared, once per batch.
func (c *classifier) masks(p []byte, at int, out []blockMasks) int {
	if !c.e.simd {
		return c.e.masksScalarBatch(p, at, out)
	}
	if at < 2 {
		// The tail hash reads two bytes back: give the first block two
		// bytes of padding, and mark the positions with fewer than two
		// bytes before them in p as the scalar classifier does.
		if len(out) == 0 || at >= len(p) {
			return 0
		}
		var tmp [66]byte
		copy(tmp[2-at:2], p[:at]) // the bytes p has before at
		n := copy(tmp[2:], p[at:])
		c.masks(tmp[:2+n], 2, out[:1])
		out[0].tail |= 3 >> at &^ (^uint64(0) << n)
		return 1 + c.masks(p, at+64, out[1:])
	}
	tb := &c.e.vec
	lo, hi := archsimd.LoadUint8x64(&tb.lo), archsimd.LoadUint8x64(&tb.hi)
	rev, unit, tr := archsimd.LoadUint8x64(&tb.rev), archsimd.LoadUint8x64(&tb.unit), archsimd.LoadUint8x64(&tb.tr)
	top, stop := archsimd.BroadcastUint8x64(0x80), archsimd.BroadcastUint8x64(clStop)
	t0, t1 := archsimd.LoadUint8x64(&tb.tail[0]), archsimd.LoadUint8x64(&tb.tail[1])
	fold, zero := archsimd.BroadcastUint8x64(0x20), archsimd.BroadcastUint8x64(0)
	c2, ef, not20 := archsimd.BroadcastUint8x64(0xc2), archsimd.BroadcastUint8x64(0xef), archsimd.BroadcastUint8x64(0xdf)
	// The invisible controls: C0 but BS..CR and ESC, and DEL.
	c20, bs, cr := archsimd.BroadcastUint8x64(0x20), archsimd.BroadcastUint8x64(0x08), archsimd.BroadcastUint8x64(0x0d)
	esc, del := archsimd.BroadcastUint8x64(0x1b), archsimd.BroadcastUint8x64(0x7f)
	k := 0
	for b0 := at; b0 < len(p) && k < len(out); b0 += 64 {
		n := min(len(p)-b0, 64)
		// v1 and v2: the same bytes one and two back (b0 >= 2), for the
		// tail hash.
		var v, v1, v2 archsimd.Uint8x64
		if n == 64 {
			v = archsimd.LoadUint8x64Slice(p[b0:])
			v1 = archsimd.LoadUint8x64Slice(p[b0-1:])
			v2 = archsimd.LoadUint8x64Slice(p[b0-2:])
		} else {
			v = archsimd.LoadUint8x64SlicePart(p[b0:])
			v1 = archsimd.LoadUint8x64SlicePart(p[b0-1 : b0-1+n])
			v2 = archsimd.LoadUint8x64SlicePart(p[b0-2 : b0-2+n])
		}
		vr := v.Permute(rev)
		// Bytes from 0x80 on would get an ASCII byte's class: they have
		// none but clStop for the leads of zero-width characters. All of
		// it is done on the vector, before the store: reading the stored
		// masks back at once to patch them would stall on the store.
		cls := lo.ConcatPermute(hi, vr).Masked(vr.Less(top))
		// 0xC2 and 0xE2 differ in bit 5 only: one test for both.
		cls = cls.Or(stop.Masked(vr.And(not20).Equal(c2).Or(vr.Equal(ef))))
		m := &out[k]
		unit.GaloisFieldAffineTransform(cls.AsUint64x8(), 0).Permute(tr).AsUint64x8().Store((*[8]uint64)(unsafe.Pointer(m)))
		l0, l1, l2 := v.Or(fold), v1.Or(fold), v2.Or(fold)
		l2 = l2.Add(l2)
		h := l0.Add(l1).Add(l1).Add(l2).Add(l2) // c + 2b + 4a, by the low seven bits
		m.tail = t0.ConcatPermute(t1, h).NotEqual(zero).ToBits()
		moves := v.GreaterEqual(bs).And(v.LessEqual(cr)).Or(v.Equal(esc)).ToBits()
		m.inv = v.Less(c20).ToBits()&^moves | v.Equal(del).ToBits()
		m.zw = v.And(not20).Equal(c2).Or(v.Equal(ef)).ToBits()
		if n < 64 {
			m.stop &^= ^uint64(0) << n // the zero padding (NUL is a stop) is no input
			m.tail &^= ^uint64(0) << n
			m.inv &^= ^uint64(0) << n
			m.zw &^= ^uint64(0) << n
		}
		k++
	}
	archsimd.ClearAVXUpperBits()
	return k
}

// The vector store above writes the first eight masks of blockMasks as
// eight uint64 in class-bit order; this fails to compile if tail does not
// come right after them.
var _ = [1]struct{}{}[unsafe.Offsetof(blockMasks{}.tail)-64]
