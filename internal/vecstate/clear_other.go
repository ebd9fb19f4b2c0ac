//go:build !(goexperiment.simd && amd64)

package vecstate

// Clear does nothing: this build runs no AVX-512 code of its own.
func Clear() {}
