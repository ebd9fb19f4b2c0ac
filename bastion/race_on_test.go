//go:build race

package bastion

// raceEnabled: the race detector's instrumentation makes every frame
// larger, so the stacks of TestIdleSessionMemory are not held to the
// figure of a normal build; `make test` runs that test without it too.
const raceEnabled = true
