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

// kwTails holds the last three bytes of every keyword, last byte in the
// low bits (as keywordIn reads them back from the history).
var kwTails = func() (t []uint32) {
	for _, w := range append(append([]string{}, cvvWords...), expWords...) {
		n := len(w)
		t = append(t, uint32(w[n-1])|uint32(w[n-2])<<8|uint32(w[n-3])<<16)
	}
	return t
}()

// kwTail reports whether some keyword ends with the bytes a, b, c (any case).
func kwTail(a, b, c byte) bool {
	t := uint32(lower[c]) | uint32(lower[b])<<8 | uint32(lower[a])<<16
	for _, x := range kwTails {
		if x == t {
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
	if !kwTail(h[n-3-k], h[n-2-k], h[n-1-k]) {
		return false, false
	}
	for _, w := range cvvWords {
		if wordBack(h, w, k) {
			cvv = true
		}
	}
	for _, w := range expWords {
		if wordBack(h, w, k) {
			exp = true
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
