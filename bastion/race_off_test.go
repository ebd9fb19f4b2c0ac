//go:build !race

package bastion

// raceEnabled: see race_on_test.go.
const raceEnabled = false
