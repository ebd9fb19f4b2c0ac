// Package vecstate clears the upper halves of the vector registers, for
// code that runs long loops of legacy-SSE instructions (SHA-NI, AES-NI)
// in a process that also runs AVX-512 code (the masker's SIMD classifier,
// built with GOEXPERIMENT=simd).
//
// Go emits no VZEROUPPER of its own around simd/archsimd code, and a
// goroutine switched out in the middle of such code leaves its thread's
// upper register state dirty for whatever runs there next. Legacy-SSE
// instructions then pay a merge on every instruction: the SHA-256 of a
// recording ran at about a tenth of its speed in the server (70 s of CPU
// for a 1 GiB session instead of 18), long enough to miss its deadline.
// A clear before each block of such work costs one instruction.
package vecstate
