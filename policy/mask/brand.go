package mask

// brandRange is one issuer identification number (IIN) range of a card
// brand: every PAN whose first k digits lie in [lo, hi] and whose length is
// in lens belongs to the brand.
type brandRange struct {
	lo, hi int
	k      int    // digits of lo and hi
	lens   uint32 // bit n set: a PAN of n digits is allowed
}

// lenRange returns the length set a..b inclusive.
func lenRange(a, b int) uint32 {
	var m uint32
	for n := a; n <= b; n++ {
		m |= 1 << n
	}
	return m
}

// brands is the table from issue 4, point 2. Maestro's 12-digit cards are
// left out on purpose: 12 digits is too short to tell from other numbers,
// and the issue bounds PANs at 13–19 digits.
var brands = [...]brandRange{
	{4, 4, 1, 1<<13 | 1<<16 | 1<<19},      // Visa
	{51, 55, 2, 1 << 16},                  // Mastercard
	{2221, 2720, 4, 1 << 16},              // Mastercard 2-series
	{34, 34, 2, 1 << 15},                  // American Express
	{37, 37, 2, 1 << 15},                  // American Express
	{6011, 6011, 4, lenRange(16, 19)},     // Discover
	{644, 649, 3, lenRange(16, 19)},       // Discover
	{65, 65, 2, lenRange(16, 19)},         // Discover
	{622126, 622925, 6, lenRange(16, 19)}, // Discover (co-branded UnionPay)
	{300, 305, 3, lenRange(14, 19)},       // Diners Club
	{36, 36, 2, lenRange(14, 19)},         // Diners Club
	{38, 39, 2, lenRange(14, 19)},         // Diners Club
	{3528, 3589, 4, lenRange(16, 19)},     // JCB
	{62, 62, 2, lenRange(16, 19)},         // UnionPay
	{50, 50, 2, lenRange(13, 19)},         // Maestro
	{56, 69, 2, lenRange(13, 19)},         // Maestro
}

// maxLenBits returns the longest length in a length set.
func maxLenBits(m uint32) int {
	for n := 31; n > 0; n-- {
		if m&(1<<n) != 0 {
			return n
		}
	}
	return 0
}

// pfxOff[m] is where prefixes of m digits start in pfxMax.
var pfxOff = [5]int{0, 0, 10, 110, 1110}

// pfxMax gives, for every prefix of one to four digits, the longest PAN any
// brand allows that starts with it (0: no brand starts so). The stream uses
// it to drop a candidate at its first digits instead of holding it to the
// end: "1…", "7…", "20…" can never be a PAN. Four digits decide every range
// but 622126–622925, which lies inside UnionPay's 62 anyway. Read-only
// after package initialisation.
var pfxMax = buildPfxMax()

func buildPfxMax() []uint8 {
	t := make([]uint8, 11110)
	pow := func(n int) int {
		p := 1
		for ; n > 0; n-- {
			p *= 10
		}
		return p
	}
	for m := 1; m <= 4; m++ {
		for v := 0; v < pow(m); v++ {
			best := 0
			for _, b := range brands {
				var ok bool
				if m >= b.k {
					iin := v / pow(m-b.k)
					ok = b.lo <= iin && iin <= b.hi
				} else {
					lo := v * pow(b.k-m)
					hi := lo + pow(b.k-m) - 1
					ok = lo <= b.hi && hi >= b.lo
				}
				if ok && maxLenBits(b.lens) > best {
					best = maxLenBits(b.lens)
				}
			}
			t[pfxOff[m]+v] = uint8(best)
		}
	}
	return t
}

// brandOK reports whether the ASCII digits d have a brand's IIN and length.
func brandOK(d []byte) bool {
	n := len(d)
	for _, b := range brands {
		if b.lens&(1<<n) == 0 || n < b.k {
			continue
		}
		iin := 0
		for _, c := range d[:b.k] {
			iin = iin*10 + int(c-'0')
		}
		if b.lo <= iin && iin <= b.hi {
			return true
		}
	}
	return false
}

// luhn reports whether the ASCII digits d pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		x := int(d[i] - '0')
		if double {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
		double = !double
	}
	return sum%10 == 0
}

// validPAN reports whether d (ASCII digits only) is a PAN: 13–19 digits, a
// brand's IIN range and length, and the Luhn check.
func validPAN(d []byte) bool {
	return len(d) >= 13 && len(d) <= 19 && brandOK(d) && luhn(d)
}
