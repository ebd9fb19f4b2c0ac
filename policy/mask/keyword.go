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

// histAt returns the k-th visible byte back (0: the last).
func (s *Stream) histAt(k int) byte { return s.hist[s.histN-1-k] }

// keyword reports whether the visible text just before now ends with a cvv
// keyword or an expiry keyword, and separators.
func (s *Stream) keyword() (cvv, exp bool) {
	n := s.histN
	k := 0
	for k < n && k < maxKwSep && kwSep[s.histAt(k)] {
		k++
	}
	if k == n || !kwLast[s.histAt(k)] {
		return false, false
	}
	for _, w := range cvvWords {
		if s.wordBack(w, k, n) {
			cvv = true
		}
	}
	for _, w := range expWords {
		if s.wordBack(w, k, n) {
			exp = true
		}
	}
	return cvv, exp
}

// wordBack reports whether word w ends k bytes back, as a whole word.
func (s *Stream) wordBack(w string, k, n int) bool {
	if k+len(w) > n {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := s.histAt(k + len(w) - 1 - i)
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	if k+len(w) < n {
		c := s.histAt(k + len(w))
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}
