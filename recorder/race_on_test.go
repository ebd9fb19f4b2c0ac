//go:build race

package recorder

// raceEnabled: the race detector makes sync.Pool drop a quarter of what is
// put in it, so a test cannot count on getting a buffer back.
const raceEnabled = true
