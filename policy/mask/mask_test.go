package mask

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestMaskText(t *testing.T) {
	e := mustNew(t, allDetectors)
	for _, tc := range []struct{ name, in, want string }{
		{"visa grouped", "4111 1111 1111 1111", "**** **** **** 1111"},
		{"visa plain", "x4111111111111111y", "x************1111y"},
		{"dashes", "5555-5555-5555-4444.", "****-****-****-4444."},
		{"amex 4-6-5", "3782 822463 10005", "**** ****** *0005"},
		{"visa 13", "4222222222222", "*********2222"},
		{"mastercard 2-series", "2223003122003222", "************3222"},
		{"maestro 19", "6799990100000000019", "***************0019"},
		{"luhn fails", "4111111111111112", "4111111111111112"},
		{"no brand", "1234567812345670", "1234567812345670"},
		{"visa length 15", "411111111111116", "411111111111116"},
		{"amex length 16", "3782822463100052", "3782822463100052"},
		{"too long", "41111111111111111", "41111111111111111"},
		{"mixed separators", "4111 1111-1111 1111", "4111 1111-1111 1111"},
		{"double space", "4111  1111 1111 1111", "4111  1111 1111 1111"},
		{"pan after number", "99999 4111 1111 1111 1111", "99999 **** **** **** 1111"},
		{"pan then cvv", "4111 1111 1111 1111 123", "**** **** **** 1111 ***"},
		{"pan then date cvv", "4111111111111111 12/27 123\n12/27 123", "************1111 **/** ***\n12/27 123"},
		{"cvv before pan stays", "123 x 4111111111111111", "123 x ************1111"},
		{"sgr between digits", "4\x1b[31m111\x1b[0m 1111 1111 1111", "*\x1b[31m***\x1b[0m **** **** 1111"},
		{"osc between groups", "4111\x1b]0;t\x07 1111 1111 1111", "****\x1b]0;t\x07 **** **** 1111"},
		{"osc st", "4111\x1b]8;;u\x1b\\1111 1111 1111", "****\x1b]8;;u\x1b\\**** **** 1111"},
		{"nul between", "4\x001111111111111111"[:2] + "111111111111111", "*\x00***********1111"},
		{"zero width space", "4111\u200b1111 1111 1111", "****\u200b**** **** 1111"},
		{"cr separates", "4111\r1111 1111 1111", "4111\r1111 1111 1111"},
		{"invalid utf8 around", "\xff\xfe4111111111111111\xc3", "\xff\xfe************1111\xc3"},
		{"digits in sgr params", "\x1b[4111111111111111m", "\x1b[4111111111111111m"},
		{"track 1", "%B4111111111111111^DOE/JOHN^2712101?x", "%" + strings.Repeat("*", 34) + "?x"},
		{"track 2", ";4111111111111111=2712101?x", ";" + strings.Repeat("*", 24) + "?x"},
		{"track 2 no end sentinel", ";4111111111111111=2712 x", ";" + strings.Repeat("*", 21) + " x"},
		{"track 1 truncated", "%B4111111111111111^DOE/JOHN^27", "%B************1111^DOE/JOHN^27"},
		{"not track", ";1234=5678?", ";1234=5678?"},
		{"expiry keyword", "exp 12/27, Expires: 2027-12, valid thru 12-27", "exp **/**, Expires: ****-**, valid thru **-**"},
		{"expiry keyword not date", "expires 2026-12-01 exp 13/27", "expires 2026-12-01 exp 13/27"},
		{"cvv keywords", "CVV: 123 cvc2=4567 CID 890 security code: 1234", "CVV: *** cvc2=**** CID *** security code: ****"},
		{"cvv wrong length", "cvv 12 cvv 12345", "cvv 12 cvv 12345"},
		{"keyword inside word", "regexp 12/27 ascvv 123", "regexp 12/27 ascvv 123"},
		{"expiry keyword no cvv", "exp 123", "exp 123"},
		{"plain dates", "12/27 2027-12 12-27 1234", "12/27 2027-12 12-27 1234"},
		{"decimal after pan", "4111111111111111 120.00 10.0.0.1", "************1111 120.00 10.0.0.1"},
		{"two pans", "4111 1111 1111 1111 5555 5555 5555 4444", "**** **** **** 1111 **** **** **** 4444"},
		{"timestamps", "2026-12-01T09:00:00Z 1764579600 1764579600123", "2026-12-01T09:00:00Z 1764579600 1764579600123"},
		{"uuid", "550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := e.MaskText(tc.in)
			if got != tc.want {
				t.Errorf("MaskText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			out, s := chunked(e, nil, []byte(tc.in), true)
			if string(out) != got || s.leaked != 0 {
				t.Errorf("one byte at a time: %q (leaked %d)", out, s.leaked)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	e := mustNew(t, Options{Detectors: allDetectors.Detectors, Rules: []Rule{{Name: "ssn", Pattern: `\b\d{3}-\d{2}-\d{4}\b`}}})
	_, c := e.MaskText("4111 1111 1111 1111 12/27 123\n" +
		"cvv 999 exp 01/30 ssn 078-05-1120\n" +
		"%B4111111111111111^DOE/JOHN^2712101?\n" +
		"5555555555554444 4012888888881881 1234567812345670\n")
	want := Counts{"pan": 4, "expiry": 2, "cvv": 2, "track": 1, "ssn": 1}
	if len(c) != len(want) {
		t.Errorf("counts %v, want %v", c, want)
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("counts[%s] = %d, want %d (all: %v)", k, c[k], v, c)
		}
	}
	if _, c := e.MaskText("nothing here 2026-12-01"); len(c) != 0 {
		t.Errorf("counts %v for clear text", c)
	}
}

func TestDetectorsSelectable(t *testing.T) {
	in := "4111111111111111 12/27 123 ;4111111111111111=2712101?"
	for _, tc := range []struct {
		det  []string
		want string
	}{
		{nil, in},
		{[]string{"pan"}, "************1111 12/27 123 ;************1111=2712101?"},
		{[]string{"track"}, "4111111111111111 12/27 123 ;" + strings.Repeat("*", 24) + "?"},
		{[]string{"cvv", "expiry"}, in},
	} {
		got, _ := mustNew(t, Options{Detectors: tc.det}).MaskText(in)
		if got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.det, got, tc.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Detectors: []string{"iban"}}, `unknown detector "iban"`},
		{Options{Rules: []Rule{{Name: "ssn", Pattern: `(\d`}}}, `rule "ssn": bad pattern`},
		{Options{Rules: []Rule{{Pattern: `x`}}}, "no name"},
		{Options{Rules: []Rule{{Name: "a", Pattern: "x"}, {Name: "a", Pattern: "y"}}}, `"a" is used twice`},
		{Options{Rules: []Rule{{Name: "pan", Pattern: "x"}}}, "reserved"},
		{Options{Columns: []string{"["}}, `column glob "["`},
	} {
		_, err := New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.o, err, tc.want)
		}
	}
}

func TestRules(t *testing.T) {
	e := mustNew(t, Options{Rules: []Rule{
		{Name: "ssn", Pattern: `\b\d{3}-\d{2}-\d{4}\b`},
		{Name: "token", Pattern: `(?i)token=(\w+)`, Replacement: "token=[$1 hidden]"},
		{Name: "multi", Pattern: `BEGIN[^E]*END`},
	}})
	for _, tc := range []struct{ in, want string }{
		{"ssn 078-05-1120 ok", "ssn *********** ok"},
		{"ssn 07\x1b[1m8-05-1120\n", "ssn **\x1b[1m*********\n"},
		{"x078-05-1120", "x078-05-1120"},
		{"TOKEN=abc;", "token=[abc hidden];"},
		{"BEGIN a\nb END", "*******\n*****"},
	} {
		got, _ := e.MaskText(tc.in)
		if got != tc.want {
			t.Errorf("MaskText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		out, _ := chunked(e, nil, []byte(tc.in), true)
		if string(out) != got {
			t.Errorf("one byte at a time: %q, want %q", out, got)
		}
	}
}

func TestColumns(t *testing.T) {
	e := mustNew(t, Options{Detectors: []string{"pan"}, Columns: []string{"*card_number*", "PAN", "cvv*"}})
	for name, want := range map[string]bool{"card_number": true, "Card_Number_Hash": true, "pan": true,
		"CVV2": true, "panel": false, "id": false} {
		if e.MaskColumn(name) != want {
			t.Errorf("MaskColumn(%q) = %v", name, !want)
		}
	}
	if v, c := e.MaskCell("cvv", "12é\n3"); v != "***\n*" || c[CountColumn] != 1 {
		t.Errorf("MaskCell = %q %v", v, c)
	}
	if v, _ := e.MaskCell("note", "pay 4111111111111111"); v != "pay ************1111" {
		t.Errorf("MaskCell = %q", v)
	}
}

// TestHeld checks what the stream holds after each write: only a
// candidate still undecided, nothing once a byte closes it.
func TestHeld(t *testing.T) {
	e := mustNew(t, allDetectors)
	var out bytes.Buffer
	s := e.NewStream(&out)
	for _, step := range []struct {
		in   string
		held int
		out  string // everything forwarded so far
	}{
		{"$ ls -la\r\n", 0, "$ ls -la\r\n"},
		{"1764579600 ", 0, "$ ls -la\r\n1764579600 "},
		{"typing 12345", 0, "$ ls -la\r\n1764579600 typing 12345"},
		{"\n4111", 4, "$ ls -la\r\n1764579600 typing 12345\n"},
		{" 1111 ", 10, "$ ls -la\r\n1764579600 typing 12345\n"},
		{"1111 111", 18, "$ ls -la\r\n1764579600 typing 12345\n"},
		{"1\x1b[0m", 23, "$ ls -la\r\n1764579600 typing 12345\n"},
		{"\r\n", 0, "$ ls -la\r\n1764579600 typing 12345\n**** **** **** 1111\x1b[0m\r\n"},
		{"20", 0, "$ ls -la\r\n1764579600 typing 12345\n**** **** **** 1111\x1b[0m\r\n20"},
		{"cvv: 12", 2, "$ ls -la\r\n1764579600 typing 12345\n**** **** **** 1111\x1b[0m\r\n20cvv: "},
		{"3 ok", 0, "$ ls -la\r\n1764579600 typing 12345\n**** **** **** 1111\x1b[0m\r\n20cvv: *** ok"},
		{"4111", 4, "$ ls -la\r\n1764579600 typing 12345\n**** **** **** 1111\x1b[0m\r\n20cvv: *** ok"},
	} {
		if _, err := s.Write([]byte(step.in)); err != nil {
			t.Fatal(err)
		}
		if s.Held() != step.held || out.String() != step.out {
			t.Fatalf("after %q: held %d, out %q; want %d, %q", step.in, s.Held(), out.String(), step.held, step.out)
		}
	}
	if err := s.Flush(); err != nil || s.Held() != 0 || !strings.HasSuffix(out.String(), "ok4111") {
		t.Errorf("after Flush: %v, held %d, out %q", err, s.Held(), out.String())
	}
}

// TestHoldBound: a run that can no longer be a PAN is released at once.
func TestHoldBound(t *testing.T) {
	e := mustNew(t, allDetectors)
	var out bytes.Buffer
	s := e.NewStream(&out)
	for _, tc := range []struct {
		in   string
		held int
	}{
		{"41111111111111111111", 0},
		{"3411-1111-1111-111-", 0},    // Amex is 15 digits at most
		{"5555 5555 5555 5555 5", 16}, // "5555 5555 5555 5…" may still be one
		{"9999 9999 9999 9999 9", 0},
	} {
		s.Write([]byte(tc.in))
		if s.Held() != tc.held {
			t.Errorf("%q: held %d, want %d", tc.in, s.Held(), tc.held)
		}
		s.Write([]byte("\n"))
	}
	// Escape bytes without end inside a candidate: fail closed.
	out.Reset()
	s.Write([]byte("4111"))
	s.Write(bytes.Repeat([]byte("\x1b[0m"), maxHold/4+1))
	if s.Held() != 0 || !strings.HasPrefix(out.String(), "****\x1b[0m") {
		t.Errorf("overflow: held %d, out %.20q", s.Held(), out.String())
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errors.New("boom")
	}
	return len(p), nil
}

func TestWriterError(t *testing.T) {
	s := mustNew(t, allDetectors).NewStream(&failWriter{n: 1})
	if _, err := s.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("world")); err == nil || err.Error() != "boom" {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Write([]byte("again")); err == nil {
		t.Fatal("error not sticky")
	}
	if err := s.Flush(); err == nil {
		t.Fatal("Flush after error: nil")
	}
}

// TestConcurrentCounts: Counts and Held from another goroutine, under -race.
func TestConcurrentCounts(t *testing.T) {
	e := mustNew(t, allDetectors)
	s := e.NewStream(&bytes.Buffer{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			_ = s.Counts()
			_ = s.Held()
		}
	}()
	for i := 0; i < 200; i++ {
		s.Write([]byte("card 4111 1111 1111 1111 cvv 123\n"))
	}
	wg.Wait()
	if c := s.Counts(); c["pan"] != 200 || c["cvv"] != 200 {
		t.Errorf("counts %v", c)
	}
}
