package mask

// Magnetic-stripe track data (ISO/IEC 7813), masked whole between its
// sentinels:
//
//	track 1: %B<PAN 12–19>^<name 0–26>^<YYMM><service code, discretionary…>?  (≤ 79 bytes)
//	track 2: ;<PAN 12–19>=<YYMM><service code, discretionary…>?                (≤ 40 bytes)
//
// A track is confirmed once its expiry (YYMM) is seen, and then ends at the
// end sentinel, at a byte the format does not allow, or at its maximum
// length; a truncated track is masked too. The PAN inside is also seen by
// the pan detector, which counts it on its own.

const (
	t1Pct = iota + 1 // after '%'
	t1PAN
	t1Name
	t1Exp
	t1Rest // confirmed
)

const (
	maxTrack1 = 79
	maxTrack2 = 40
)

// track1 is the state of a track 1 candidate.
type track1 struct {
	state int
	start int64 // offset of '%'
	n     int   // digits or name bytes in the current field
	size  int   // visible bytes since '%'
}

func (t *track1) byte(s *Stream, b byte, at int64) {
	if t.state == 0 {
		if b == '%' {
			*t = track1{state: t1Pct, start: at, size: 1}
		}
		return
	}
	t.size++
	switch t.state {
	case t1Pct:
		if b == 'B' {
			t.state, t.n = t1PAN, 0
			return
		}
	case t1PAN:
		if b >= '0' && b <= '9' && t.n < 19 {
			t.n++
			return
		}
		if b == '^' && t.n >= 12 {
			t.state, t.n = t1Name, 0
			return
		}
	case t1Name:
		if b == '^' {
			t.state, t.n = t1Exp, 0
			return
		}
		if b >= 0x20 && b <= 0x7e && b != '?' && b != '%' && t.n < 26 {
			t.n++
			return
		}
	case t1Exp:
		if b >= '0' && b <= '9' {
			if t.n++; t.n == 4 {
				t.state = t1Rest
			}
			return
		}
	case t1Rest:
		if b == '?' {
			t.end(s, at)
			return
		}
		if b >= 0x20 && b <= 0x7e && b != '%' && b != '^' && t.size <= maxTrack1 {
			return
		}
		t.end(s, at)
	}
	// Not track 1 (or a confirmed one ended before b): b may start another.
	t.state = 0
	if b == '%' {
		*t = track1{state: t1Pct, start: at, size: 1}
	}
}

// end closes the candidate before offset at, masking it if confirmed.
func (t *track1) end(s *Stream, at int64) {
	if t.state == t1Rest {
		s.starRange(t.start+1, at)
		s.count(idxTrack)
	}
	t.state = 0
}

const (
	t2PAN  = iota + 1 // after ';'
	t2Rest            // after '='
)

// track2 is the state of a track 2 candidate.
type track2 struct {
	state int
	start int64 // offset of ';'
	n     int   // digits in the current field
	size  int   // visible bytes since ';'
}

func (t *track2) byte(s *Stream, b byte, at int64) {
	if t.state == 0 {
		if b == ';' {
			*t = track2{state: t2PAN, start: at, size: 1}
		}
		return
	}
	t.size++
	digit := b >= '0' && b <= '9'
	switch t.state {
	case t2PAN:
		if digit && t.n < 19 {
			t.n++
			return
		}
		if b == '=' && t.n >= 12 {
			t.state, t.n = t2Rest, 0
			return
		}
	case t2Rest:
		if digit && t.size <= maxTrack2 {
			t.n++
			return
		}
		t.end(s, at)
	}
	t.state = 0
	if b == ';' {
		*t = track2{state: t2PAN, start: at, size: 1}
	}
}

// end closes the candidate before offset at, masking it if it holds at
// least an expiry after '='.
func (t *track2) end(s *Stream, at int64) {
	if t.state == t2Rest && t.n >= 4 {
		s.starRange(t.start+1, at)
		s.count(idxTrack)
	}
	t.state = 0
}
