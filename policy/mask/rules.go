package mask

// segment is the text a stream collects for custom rules: a run of bytes
// the rules' patterns can contain (Engine.alpha), from the first byte a
// match can start with (Engine.first). A match can lie nowhere else, so
// the stream holds no more than the run, and releases it at the first byte
// no pattern can contain. Transparent bytes are left out of the text, so
// rules see through colour codes as the built-in detectors do.
//
// Patterns run on the segment with one visible byte of context on either
// side, so that \b sees the real neighbours; ^ and $ mean the edges of the
// segment. A run longer than segMax is cut there.
type segment struct {
	open  bool
	start int64
	vis   []byte  // visible bytes; vis[0] is the byte before the run, for \b
	pos   []int64 // their offsets
}

// segByte feeds one visible byte to the custom rules.
func (s *Stream) segByte(b byte, at int64) {
	e := s.e
	if s.seg.open {
		if e.alpha[b] && len(s.seg.vis) < segMax {
			s.seg.vis = append(s.seg.vis, b)
			s.seg.pos = append(s.seg.pos, at)
			return
		}
		s.applyRules(b, true)
	}
	if e.first[b] {
		var prev byte = '\n' // none yet: a boundary, as at the start of text
		if s.histN > 0 {
			prev = s.histAt(0)
		}
		s.seg.open, s.seg.start = true, at
		s.seg.vis = append(s.seg.vis[:0], prev, b)
		s.seg.pos = append(s.seg.pos[:0], -1, at)
	}
}

// applyRules runs every rule over the segment, marks what they match and
// closes the segment. next is the visible byte that closed it, if any.
func (s *Stream) applyRules(next byte, hasNext bool) {
	n := len(s.seg.vis)
	if hasNext {
		s.seg.vis = append(s.seg.vis, next)
	}
	vis, pos := s.seg.vis, s.seg.pos
	for i, r := range s.e.rules {
		for _, m := range r.re.FindAllSubmatchIndex(vis, -1) {
			a, b := m[0], m[1]
			if a == b || a < 1 || b > n {
				continue // empty, or in the context bytes
			}
			s.count(nBuiltin + i)
			if r.repl == nil || !s.replace(pos[a], pos[b-1]+1, r.re.Expand(nil, r.repl, vis, m)) {
				for k := a; k < b; k++ {
					if vis[k] != '\n' && vis[k] != '\r' {
						s.star(pos[k])
					}
				}
			}
		}
	}
	s.seg.open = false
	s.seg.vis, s.seg.pos = s.seg.vis[:0], s.seg.pos[:0]
}

// replace drops the visible bytes in [a, b) and writes text in their place.
// It reports false, changing nothing, if another replacement overlaps.
func (s *Stream) replace(a, b int64, text []byte) bool {
	if a < s.base || b > s.base+int64(len(s.pend)) {
		s.leaked++
		return false
	}
	for at := a; at < b; at++ {
		if s.flags[at-s.base] == fDrop {
			return false
		}
	}
	for at := a; at < b; at++ {
		if s.flags[at-s.base] != fEsc {
			s.flags[at-s.base] = fDrop
		}
	}
	s.repl = append(s.repl, replOp{at: a, text: text})
	return true
}
