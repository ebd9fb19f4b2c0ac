package mask

// A chain is a run of digit groups joined by single separators: ' ' or '-'
// (which PANs are written with), '/' (which only expiry dates use) or '.'
// (which none uses, but which tells "120.00" or 10.0.0.5 from a cvv), with
// transparent bytes anywhere in between. "4111 1111 1111 1111 12/27 123" is
// one chain of six groups. Groups are maximal digit runs, so a chain ends at
// any other visible byte, or at a separator not followed by a digit.
//
// The chain decides three detectors:
//
//   - pan: a window of whole consecutive groups, joined by one and the same
//     separator (' ' or '-'), of 13–19 digits, with a brand's IIN and
//     length and a valid Luhn check digit. A window of one group is a PAN
//     written plain. Every window is tried, so neighbouring numbers
//     ("4111 1111 1111 1111 123") cannot hide a PAN; a digit is left clear
//     only if no valid window masks it, and a window keeps its last four.
//   - expiry: two groups MM/YY, MM/YYYY, YYYY-MM or MM-YY (MM 01–12) not
//     joined to more groups by '/', '-' or '.' (so 2026-12-01 is no expiry).
//   - cvv: a group of 3–4 digits not joined by '/', '-' or '.' and not part
//     of a PAN.
//
// Expiry and cvv need context: a PAN masked earlier on the same line, or a
// keyword right before the group (see keyword).
//
// Holding: a window can only start at a group whose first digits some brand
// allows ("4…", "51…", "2221…"); such a start is alive until the window
// grows past the longest length its brand allows or meets a different
// separator. The chain holds from its earliest alive start, or from a group
// that may still be an expiry or cvv. Nothing else is held: "1764579600" or
// "2026-" go out as they arrive.
type chain struct {
	open, inGroup bool
	sep           byte // joiner seen after the last group, while !inGroup

	groups []group
	gbase  int // index of groups[0] since the chain began

	dig   []byte  // digits since dbase
	dpos  []int64 // offset of each digit
	dbase int     // index of dig[0] in the chain's digits
	total int     // digits in the chain so far

	starts  []start // alive window starts, in order
	counted int     // last group of the last PAN counted (-1: none)
	settled int     // groups before this have no pending decision
}

// group is one run of digits in a chain.
type group struct {
	at        int64 // offset of its first digit
	cum       int   // chain digits before it
	n         int   // its digits
	val       int   // value of its first four digits
	sepBefore byte  // 0 for the first group
	sepAfter  byte  // 0 until known, and for the last group
	afterSet  bool  // sepAfter is known
	cvv       bool  // may still be a cvv
	exp       bool  // may still be the first half of an expiry date
	inPAN     bool
}

// start is an alive PAN window start.
type start struct {
	g      int  // group index
	sep    byte // the window's separator, 0 while it spans one group
	v      int  // value of the window's first (up to four) digits
	maxLen int  // longest PAN its brands allow
}

func (c *chain) reset() {
	c.open, c.inGroup, c.sep = false, false, 0
	c.groups = c.groups[:0]
	c.gbase = 0
	c.dig, c.dpos = c.dig[:0], c.dpos[:0]
	c.dbase, c.total = 0, 0
	c.starts = c.starts[:0]
	c.counted, c.settled = -1, 0
}

// g returns group i (an index since the chain began).
func (c *chain) g(i int) *group { return &c.groups[i-c.gbase] }

// last returns the index of the last group.
func (c *chain) last() int { return c.gbase + len(c.groups) - 1 }

// hold returns the offset the chain must hold from.
func (c *chain) hold() int64 {
	h := int64(noHold)
	if len(c.starts) > 0 {
		h = c.g(c.starts[0].g).at
	}
	for i := c.settled; i <= c.last(); i++ {
		if g := c.g(i); g.cvv || g.exp {
			if g.at < h {
				h = g.at
			}
			break
		}
	}
	return h
}

// chainSep reports whether b separates the groups of a digit chain: the
// chain detector, the chain path and its look ahead share this one set.
func chainSep(b byte) bool { return b == ' ' || b == '-' || b == '/' || b == '.' }

// chainByte feeds one visible byte to the chain.
func (s *Stream) chainByte(b byte, at int64) {
	c := &s.ch
	switch {
	case b >= '0' && b <= '9':
		if !c.inGroup {
			s.groupStart(at)
		}
		s.digit(b, at)
	case c.inGroup && chainSep(b):
		s.groupEnd()
		c.inGroup, c.sep = false, b
	case c.open:
		s.chainEnd()
	}
}

// groupStart opens a group at offset at: a new chain, or the next group of
// this one if a joiner came before.
func (s *Stream) groupStart(at int64) {
	c := &s.ch
	var sep byte
	if c.open {
		sep = c.sep
		s.sepKnown(c.last(), sep)
		c.compact()
	} else {
		c.reset()
		c.open = true
	}
	e := s.e
	g := group{at: at, cum: c.total, sepBefore: sep}
	if (e.cvv || e.expiry) && sep != '-' && sep != '/' && sep != '.' {
		cvv, exp := s.line, s.line
		if !s.line {
			cvv, exp = s.keyword()
		}
		g.cvv = e.cvv && cvv
		g.exp = e.expiry && exp
	}
	c.groups = append(c.groups, g)
	if e.pan {
		c.starts = append(c.starts, start{g: c.last(), maxLen: 19})
	}
	c.inGroup = true
}

// digit adds one digit to the current group.
func (s *Stream) digit(b byte, at int64) {
	c := &s.ch
	d := int(b - '0')
	c.dig = append(c.dig, b)
	c.dpos = append(c.dpos, at)
	c.total++
	li := c.last()
	g := c.g(li)
	g.n++
	if g.n <= 4 {
		g.val = g.val*10 + d
	} else {
		g.cvv, g.exp = false, false
	}
	if li > c.gbase {
		// The second half of an expiry date may not outgrow its shape.
		if q := c.g(li - 1); q.exp && g.n > expSecond(q) {
			q.exp = false
		}
	}
	k := 0
	for _, st := range c.starts {
		w := c.total - c.g(st.g).cum
		if w <= 4 {
			st.v = st.v*10 + d
			st.maxLen = int(pfxMax[pfxOff[w]+st.v])
		}
		if w <= st.maxLen {
			c.starts[k] = st
			k++
		}
	}
	c.starts = c.starts[:k]
}

// expSecond returns how many digits the group after q may have for q and
// it to be an expiry date.
func expSecond(q *group) int {
	switch {
	case q.n == 2 && q.sepAfter == '/':
		return 4
	case q.n == 2 && q.sepAfter == '-', q.n == 4 && q.sepAfter == '-':
		return 2
	}
	return 0
}

// expShape reports whether q and the group g after it have the digits of
// an expiry date: MM/YY, MM/YYYY, MM-YY or YYYY-MM.
func expShape(q, g *group) bool {
	switch {
	case q.n == 2 && q.sepAfter == '/':
		return g.n == 2 || g.n == 4
	case q.n == 2 && q.sepAfter == '-', q.n == 4 && q.sepAfter == '-':
		return g.n == 2
	}
	return false
}

// groupEnd closes the current group and tries every PAN window ending with it.
func (s *Stream) groupEnd() {
	c := &s.ch
	j := c.last()
	for _, st := range c.starts {
		first := c.g(st.g).cum
		w := c.total - first
		if w < 13 || !validPAN(c.dig[first-c.dbase:c.total-c.dbase]) {
			continue
		}
		for k := first; k < c.total-4; k++ {
			s.star(c.dpos[k-c.dbase])
		}
		for k := st.g; k <= j; k++ {
			c.g(k).inPAN = true
		}
		s.line = true
		if st.g > c.counted {
			s.count(idxPAN)
			c.counted = j
		}
	}
	// A start already at its brand's longest length cannot grow into a PAN.
	k := 0
	for _, st := range c.starts {
		if c.total-c.g(st.g).cum < st.maxLen {
			c.starts[k] = st
			k++
		}
	}
	c.starts = c.starts[:k]
}

// sepKnown records what follows group p: joiner sep (' ', '-', '/') before
// another group, or 0 when the chain ends after it.
func (s *Stream) sepKnown(p int, sep byte) {
	c := &s.ch
	g := c.g(p)
	g.sepAfter, g.afterSet = sep, true
	// A window goes on only with its own separator.
	k := 0
	for _, st := range c.starts {
		if sep == ' ' || sep == '-' {
			if st.g == p {
				st.sep = sep
			}
			if st.sep == sep {
				c.starts[k] = st
				k++
			}
		}
	}
	c.starts = c.starts[:k]
	if sep == '-' || sep == '/' || sep == '.' {
		g.cvv = false
	}
	// g as the second half of an expiry date.
	if p > c.gbase {
		if q := c.g(p - 1); q.exp {
			q.exp = false
			if sep != '-' && sep != '/' && sep != '.' && expShape(q, g) {
				mm := q.val
				if q.n == 4 {
					mm = g.val
				}
				if mm >= 1 && mm <= 12 {
					for k := q.cum; k < g.cum+g.n; k++ {
						s.star(c.dpos[k-c.dbase])
					}
					s.count(idxExpiry)
				}
			}
		}
	}
	// g as the first half.
	if g.exp {
		g.exp = (g.n == 2 && (sep == '/' || sep == '-')) || (g.n == 4 && sep == '-')
	}
	s.settle()
}

// settle decides the cvv of every group no PAN window can still include.
func (s *Stream) settle() {
	c := &s.ch
	limit := c.last() + 1
	if len(c.starts) > 0 && c.starts[0].g < limit {
		limit = c.starts[0].g
	}
	for ; c.settled < limit; c.settled++ {
		g := c.g(c.settled)
		if !g.afterSet || g.exp {
			break
		}
		if g.cvv {
			g.cvv = false
			if !g.inPAN && g.n >= 3 {
				for k := g.cum; k < g.cum+g.n; k++ {
					s.star(c.dpos[k-c.dbase])
				}
				s.count(idxCVV)
			}
		}
	}
}

// chainEnd closes the chain at a byte that cannot continue it.
func (s *Stream) chainEnd() {
	c := &s.ch
	if c.inGroup {
		s.groupEnd()
	}
	s.sepKnown(c.last(), 0)
	c.reset()
}

// compact drops groups and digits no decision needs any more, so that an
// endless chain ("1 2 3 4 …") takes bounded memory.
func (c *chain) compact() {
	if len(c.groups) < 64 {
		return
	}
	keep := c.last() - 1
	if len(c.starts) > 0 && c.starts[0].g < keep {
		keep = c.starts[0].g
	}
	if c.settled < keep {
		keep = c.settled
	}
	if c.counted >= 0 && c.counted < keep {
		// counted only compares with later starts; an older value is as good.
		c.counted = keep - 1
	}
	n := keep - c.gbase
	if n <= 0 {
		return
	}
	d := c.g(keep).cum - c.dbase
	c.groups = c.groups[:copy(c.groups, c.groups[n:])]
	c.gbase = keep
	c.dig = c.dig[:copy(c.dig, c.dig[d:])]
	c.dpos = c.dpos[:copy(c.dpos, c.dpos[d:])]
	c.dbase += d
}
