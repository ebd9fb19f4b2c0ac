package mask

// Keywords that put the value right after them in context for the expiry
// and cvv detectors, matched case-insensitively on whole words, with up to
// maxKwSep separators (space, tab, ':', '=', quotes, '.') before the value:
// "CVV: 123", "exp=12/27", `"cvc2":"123"`.
var (
	cvvWords = []string{"cvv", "cvv2", "cvc", "cvc2", "cid", "security code"}
	expWords = []string{"exp", "expiry", "expires", "expiration", "exp date", "expiry date", "valid thru"}
)

const maxKwSep = 8

// kwSep holds the bytes allowed between a keyword and its value.
var kwSep = func() (t [256]bool) {
	for _, b := range []byte(" \t:=\"'.") {
		t[b] = true
	}
	return t
}()

// kwLast holds the last letters of keywords, a cheap test that rules out
// almost every position before looking at the words.
var kwLast = func() (t [256]bool) {
	for _, w := range append(append([]string{}, cvvWords...), expWords...) {
		c := w[len(w)-1]
		t[c] = true
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = true
		}
	}
	return t
}()

// lower folds ASCII letters to lower case and leaves other bytes alone.
var lower = func() (t [256]byte) {
	for b := range t {
		t[b] = byte(b)
		if b >= 'A' && b <= 'Z' {
			t[b] = byte(b) + 'a' - 'A'
		}
	}
	return t
}()

// kwEntry is one keyword as the history is matched against it.
type kwEntry struct {
	tail uint16 // the two bytes before the last: the third last low
	word string
	cvv  bool // a cvv keyword, else an expiry one
}

// kwIndex holds the keywords by last byte. kwTail and keywordIn run for
// every chain after a keyword-like byte, so they look only at the two or
// three keywords sharing a last letter, not at all of them.
var kwIndex = func() (t [256][]kwEntry) {
	add := func(words []string, cvv bool) {
		for _, w := range words {
			n := len(w)
			t[w[n-1]] = append(t[w[n-1]], kwEntry{uint16(w[n-3]) | uint16(w[n-2])<<8, w, cvv})
		}
	}
	add(cvvWords, true)
	add(expWords, false)
	return t
}()

// kwTail reports whether some keyword ends with the bytes a, b, c (any case).
func kwTail(a, b, c byte) bool {
	x := uint16(lower[a]) | uint16(lower[b])<<8
	for _, w := range kwIndex[lower[c]] {
		if w.tail == x {
			return true
		}
	}
	return false
}

// histAt returns the k-th visible byte back (0: the last).
func (s *Stream) histAt(k int) byte { return s.hist[s.histN-1-k] }

// keyword reports whether the visible text just before now ends with a cvv
// keyword or an expiry keyword, and separators.
func (s *Stream) keyword() (cvv, exp bool) { return keywordIn(s.hist[:s.histN]) }

// keywordIn is keyword on the visible history h, whose last byte is the
// most recent. h needs no more than histKeep bytes.
func keywordIn(h []byte) (cvv, exp bool) {
	n := len(h)
	k := 0
	for k < n && k < maxKwSep && kwSep[h[n-1-k]] {
		k++
	}
	if k == n || !kwLast[h[n-1-k]] {
		return false, false
	}
	// Every keyword has three bytes or more: its last three, folded to
	// lower case, rule out almost every other word before the loops below.
	if k+3 > n {
		return false, false
	}
	x := uint16(lower[h[n-3-k]]) | uint16(lower[h[n-2-k]])<<8
	for _, w := range kwIndex[lower[h[n-1-k]]] {
		if w.tail == x && wordBack(h, w.word, k) {
			if w.cvv {
				cvv = true
			} else {
				exp = true
			}
		}
	}
	return cvv, exp
}

// wordBack reports whether word w ends k bytes before the end of h, as a
// whole word.
func wordBack(h []byte, w string, k int) bool {
	n := len(h)
	if k+len(w) > n {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := h[n-1-(k+len(w)-1-i)]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	if k+len(w) < n {
		c := h[n-1-(k+len(w))]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}
