// Package race tells tests whether the race detector is on. The detector
// makes every frame and object larger and makes sync.Pool drop a quarter
// of what is put in it, so tests of memory and of buffer reuse hold their
// figures only without it.
package race
