package recorder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// ExportStandard copies the asciicast v2 stream r to w with every "b" event
// turned into an "o" event, for players that know only the standard event
// types: the bytes become text as asciinema's own recorder would have made
// them (a character split across events whole, each invalid sequence one
// U+FFFD), which is what a terminal shows for them too. Every other line is
// copied as it is. The result is a standard recording but not the evidence:
// its SHA-256 is not the recording_sha256 of the session's audit record,
// and the bytes that were not text are gone from it. Errors name the line.
func ExportStandard(w io.Writer, r io.Reader) error {
	d := NewDecoder(r)
	bw := bufio.NewWriterSize(w, 256<<10)
	header, err := d.readLine()
	if errors.Is(err, io.EOF) {
		return errors.New("line 1: empty asciicast stream: no header")
	}
	if err != nil {
		return err
	}
	if _, err := d.parseHeader(header); err != nil {
		return err
	}
	if _, err := bw.Write(append(header, '\n')); err != nil {
		return fmt.Errorf("write standard asciicast: %w", err)
	}
	var (
		text utf8Decoder
		at   time.Duration // time of the last "b" event
		out  []byte
	)
	// flushHeld writes the start of a character the "b" events left
	// incomplete: the next output is an "o" event, or there is none.
	flushHeld := func() []byte {
		return appendEventLine(out[:0], at, 'o', nil, &text, true)
	}
	for {
		line, err := d.readLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		out = out[:0]
		if len(bytes.TrimSpace(line)) > 0 {
			ev, err := ParseEventLine(line)
			if err != nil {
				return fmt.Errorf("line %d: %w", d.line, err)
			}
			if ev.Type == EventBinary {
				at = time.Duration(ev.Time * float64(time.Second))
				out = appendEventLine(out, at, 'o', []byte(ev.Data), &text, false)
				if _, err := bw.Write(out); err != nil {
					return fmt.Errorf("write standard asciicast: %w", err)
				}
				continue
			}
			if ev.Type == EventOutput && text.n > 0 {
				out = flushHeld()
			}
		}
		out = append(append(out, line...), '\n')
		if _, err := bw.Write(out); err != nil {
			return fmt.Errorf("write standard asciicast: %w", err)
		}
	}
	if text.n > 0 {
		if _, err := bw.Write(flushHeld()); err != nil {
			return fmt.Errorf("write standard asciicast: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write standard asciicast: %w", err)
	}
	return nil
}
