// Package mask is bastion's masking engine for cardholder data: it finds
// PANs, magnetic-stripe track data, and expiry dates and CVVs in context,
// plus custom regular-expression rules, in terminal output delivered as a
// byte stream in chunks of any size, and masks them before the bytes reach
// a client or a recording (PCI DSS 3.4.1).
//
// The package is pure: no I/O but the writer it is given, no goroutines, no
// timers, no global mutable state. An Engine is compiled once per config
// and shared; each output stream gets its own Stream.
//
// # What the stream sees
//
// Escape sequences (CSI ESC [ … final, OSC/DCS/SOS/PM/APC strings up to BEL
// or ST, and other ESC sequences), the C0 controls a terminal does not
// print (NUL, BEL, SO, SI, …, DEL), and, inside a candidate, UTF-8
// zero-width characters are transparent: passed through unchanged and
// skipped by the detectors, so "4111\x1b[1m1111…" is seen as digits. BS,
// HT, LF, VT, FF and CR separate, as they move the cursor.
//
// Digits are ASCII 0–9 only: full-width and other Unicode digits are out of
// scope, as are cursor-movement tricks that draw a number out of order (only
// a terminal emulator could see those) and digits inside escape sequences'
// parameters and OSC strings (a window title), which the detectors skip.
//
// # Holding
//
// A byte that cannot be part of a candidate is forwarded in the Write call
// that brought it; the fast path skips to the next digit, ESC or other byte
// that can start a candidate, passes over whole digit chains it can prove
// clear (see plainChain), and forwards all before it at once. A candidate
// is held only while undecided, and only from its first byte that could
// still need masking; see chain for the PAN, expiry and cvv rules. Once the
// data of a Write ends with a byte that closes every candidate (a newline,
// a letter after digits), Held is 0.
package mask
