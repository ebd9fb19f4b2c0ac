// Package replay is the auditor's player for recorded sessions, apart from
// any terminal: the timeline of a recording and how to seek in it, the
// playback speed and pause as a state machine driven by keys, the status
// line, and the sanitizer that keeps a hostile recording from acting on
// the viewer's terminal. cmd/bastion (bastion replay) and the SSH builtin
// (ssh -t bastion replay ID) put it on a real terminal: raw mode, size and
// resizes are theirs.
package replay
