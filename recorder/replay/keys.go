package replay

import (
	"fmt"
	"math"
	"slices"
)

// Key is a player command read from the viewer's keyboard.
type Key int

// The keys of the player.
const (
	KeyPause   Key = iota + 1 // space: pause or resume
	KeyFaster                 // +
	KeySlower                 // -
	KeyForward                // →: 5 s on
	KeyBack                   // ←: 5 s back
	KeyQuit                   // q, or Ctrl-C
)

// Jump is how far → and ← move.
const Jump = 5.0 // seconds

// Speeds are the steps of + and -.
var Speeds = []float64{0.25, 0.5, 1, 2, 4, 8, 16}

// MinSpeed and MaxSpeed bound --speed.
const (
	MinSpeed = 0.25
	MaxSpeed = 16
)

// CheckSpeed refuses a speed outside the player's range.
func CheckSpeed(v float64) error {
	if math.IsNaN(v) || v < MinSpeed || v > MaxSpeed {
		return fmt.Errorf("speed %v is outside %v..%v", v, MinSpeed, MaxSpeed)
	}
	return nil
}

// KeyDecoder turns what a terminal sends into keys. Arrow keys come as
// ESC [ C or, in application cursor mode, ESC O C, possibly split across
// reads; other sequences and keys are ignored.
type KeyDecoder struct {
	pend []byte
}

// Feed decodes b and returns the keys completed.
func (d *KeyDecoder) Feed(b []byte) []Key {
	var keys []Key
	in := append(d.pend, b...)
	d.pend = d.pend[:0]
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != 0x1b {
			switch c {
			case ' ':
				keys = append(keys, KeyPause)
			case '+', '=':
				keys = append(keys, KeyFaster)
			case '-', '_':
				keys = append(keys, KeySlower)
			case 'q', 'Q', 0x03, 0x04:
				keys = append(keys, KeyQuit)
			}
			continue
		}
		// An escape sequence: ESC, '[' or 'O', parameters, a final byte.
		j := i + 1
		if j == len(in) {
			d.pend = append(d.pend, in[i:]...)
			break
		}
		if in[j] != '[' && in[j] != 'O' {
			continue // Alt+key or a lone Esc: ignored
		}
		j++
		for j < len(in) && in[j] >= 0x20 && in[j] <= 0x3f {
			j++
		}
		if j == len(in) {
			if len(in)-i < 16 {
				d.pend = append(d.pend, in[i:]...)
			}
			break
		}
		switch in[j] {
		case 'C':
			keys = append(keys, KeyForward)
		case 'D':
			keys = append(keys, KeyBack)
		}
		i = j
	}
	return keys
}

// State is what the viewer controls: speed and pause. Positions are
// recorded time, in seconds since the session start, so that the status
// line and --from agree with the times `bastion sessions` shows; the idle
// limit shortens waiting, not the timeline.
type State struct {
	Speed  float64
	Paused bool
	Length float64 // the time of the last event
}

// Action is what a key asks the player to do.
type Action struct {
	// Seek is set when the player must move to To.
	Seek bool
	To   float64
	// Quit ends the replay.
	Quit bool
}

// Apply applies key k at position pos and returns what the player must
// do; speed and pause change in s.
func (s *State) Apply(k Key, pos float64) Action {
	switch k {
	case KeyPause:
		s.Paused = !s.Paused
	case KeyFaster:
		if i := slices.IndexFunc(Speeds, func(v float64) bool { return v > s.Speed }); i >= 0 {
			s.Speed = Speeds[i]
		}
	case KeySlower:
		for i := len(Speeds) - 1; i >= 0; i-- {
			if Speeds[i] < s.Speed {
				s.Speed = Speeds[i]
				break
			}
		}
	case KeyForward:
		return Action{Seek: true, To: min(pos+Jump, s.Length)}
	case KeyBack:
		return Action{Seek: true, To: max(pos-Jump, 0)}
	case KeyQuit:
		return Action{Quit: true}
	}
	return Action{}
}
