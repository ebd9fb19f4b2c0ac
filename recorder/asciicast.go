package recorder

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// Event types of asciicast v2.
const (
	EventOutput = "o" // bytes the terminal printed
	EventInput  = "i" // bytes the user typed
	EventResize = "r" // terminal resized; data is "COLSxROWS"
	EventMarker = "m" // a named point in the recording
	// EventBinary is output that is not UTF-8 text (binary files, Latin-1
	// logs): bastion's extension, which asciicast v2 allows ("the list is
	// open to extension"; players skip types they do not know). An "o"
	// event can carry only text, so its bytes would become U+FFFD and be
	// lost; a "b" line carries them as standard base64, and the Event
	// holds them as they were printed. ExportStandard turns them back
	// into "o" events for players that know only the four types above.
	EventBinary = "b"
)

// MaxLineBytes bounds one line of an asciicast stream. A recorder line holds
// one read of the terminal (tens of KiB at most, even escaped), so anything
// this large is a damaged or hostile file, and refusing it keeps a replay
// from exhausting memory.
const MaxLineBytes = 16 << 20

// Header is the first line of an asciicast v2 file.
type Header struct {
	Version       int               `json:"version"`
	Width         int               `json:"width"`
	Height        int               `json:"height"`
	Timestamp     int64             `json:"timestamp,omitempty"` // unix seconds of the session start
	Title         string            `json:"title,omitempty"`
	Env           map[string]string `json:"env,omitempty"` // TERM and SHELL, as asciinema records them
	IdleTimeLimit float64           `json:"idle_time_limit,omitempty"`
}

// Event is one line after the header: [time, type, data]. Time is seconds
// since the session start. Data is the event's data as the line spells it,
// except for a "b" event, whose Data is the bytes its base64 stands for.
type Event struct {
	Time float64
	Type string
	Data string
}

// IsOutput reports whether the event is something the terminal printed:
// an "o" or a "b" event, whose Data is then the bytes to write.
func (e Event) IsOutput() bool { return e.Type == EventOutput || e.Type == EventBinary }

// decodeBinary replaces a "b" event's base64 with the bytes it stands for.
func (e *Event) decodeBinary() error {
	if e.Type != EventBinary {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(e.Data)
	if err != nil {
		return fmt.Errorf("binary output event data is not standard base64: %w", err)
	}
	e.Data = string(raw)
	return nil
}

// MarshalJSON encodes the event as the 3-element array asciicast v2 wants,
// with the time rounded to microseconds, which is the precision of the format.
func (e Event) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	if err := encodeEvent(&buf, e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes the 3-element array form, refusing anything else so
// that a damaged file is reported rather than replayed wrongly. Event types
// other than o, i, r and m are accepted: the format lets players skip them.
func (e *Event) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("event is not a JSON array [time, type, data]: %w", err)
	}
	if len(raw) != 3 {
		return fmt.Errorf("event has %d elements; want [time, type, data]", len(raw))
	}
	var ev Event
	if err := json.Unmarshal(raw[0], &ev.Time); err != nil {
		return fmt.Errorf("event time is not a number: %w", err)
	}
	if ev.Time < 0 || math.IsNaN(ev.Time) || math.IsInf(ev.Time, 0) {
		return fmt.Errorf("event time %v is not a non-negative number of seconds", ev.Time)
	}
	if err := json.Unmarshal(raw[1], &ev.Type); err != nil {
		return fmt.Errorf("event type is not a string: %w", err)
	}
	if ev.Type == "" {
		return errors.New("event type is empty")
	}
	if err := json.Unmarshal(raw[2], &ev.Data); err != nil {
		return fmt.Errorf("event data is not a string: %w", err)
	}
	if err := ev.decodeBinary(); err != nil {
		return err
	}
	*e = ev
	return nil
}

// roundMicro rounds seconds to whole microseconds. Times too large for that
// (only a damaged file has them) are kept as they are.
func roundMicro(sec float64) float64 {
	if r := math.Round(sec*1e6) / 1e6; !math.IsInf(r, 0) {
		return r
	}
	return sec
}

// encodeEvent appends one event line, newline included, to buf. The hot
// path of the recording (every output byte passes here) writes the line
// itself: encoding/json's general string encoder costs half of the
// recording's CPU on NUL-heavy output. The result is byte for byte what
// encoding/json writes without HTML escaping (TestEncodeEventMatchesJSON
// and FuzzEncodeEvent hold it to that), so the format stays encoding/json's:
// an escaping bug in a recording is an evidence bug. Times outside the
// range where encoding/json prints plain decimals, and invalid UTF-8, take
// encoding/json itself. A "b" event's bytes are written as base64.
func encodeEvent(buf *bytes.Buffer, e Event) error {
	if e.Type == EventBinary {
		e.Data = base64.StdEncoding.EncodeToString([]byte(e.Data))
	}
	t := roundMicro(e.Time)
	if math.IsNaN(t) || math.IsInf(t, 0) || (t != 0 && (math.Abs(t) < 1e-6 || math.Abs(t) >= 1e21)) ||
		!utf8.ValidString(e.Type) || !utf8.ValidString(e.Data) {
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode([3]any{t, e.Type, e.Data}); err != nil {
			return fmt.Errorf("encode %q event: %w", e.Type, err)
		}
		return nil
	}
	b := buf.AvailableBuffer()
	b = append(b, '[')
	b = strconv.AppendFloat(b, t, 'f', -1, 64)
	b = append(b, ',')
	b = appendJSONString(b, e.Type)
	b = append(b, ',')
	b = appendJSONString(b, e.Data)
	b = append(b, ']', '\n')
	buf.Write(b)
	return nil
}

// jsonSafe marks the bytes that stand for themselves inside a JSON string
// as encoding/json writes it without HTML escaping.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s, valid UTF-8, as a JSON string in
// encoding/json's spelling: \" \\ \b \f \n \r \t, other controls as
// \u00XX, and U+2028 and U+2029 escaped (JavaScript line terminators).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			if c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
				b = append(b, s[start:i]...)
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xF])
				i += 3
				start = i
				continue
			}
			i++
			continue
		}
		b = append(b, s[start:i]...)
		b = appendEscape(b, c)
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Encoder writes an asciicast v2 stream: one header, then events.
type Encoder struct {
	w   io.Writer
	buf bytes.Buffer
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// WriteHeader writes the header line. Version 0 is written as 2.
func (e *Encoder) WriteHeader(h Header) error {
	if h.Version == 0 {
		h.Version = 2
	}
	e.buf.Reset()
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("encode asciicast header: %w", err)
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return fmt.Errorf("write asciicast header: %w", err)
	}
	return nil
}

// WriteEvent writes one event line.
func (e *Encoder) WriteEvent(ev Event) error {
	e.buf.Reset()
	if err := encodeEvent(&e.buf, ev); err != nil {
		return err
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return fmt.Errorf("write asciicast event: %w", err)
	}
	return nil
}

// Decoder reads an asciicast v2 stream. Errors name the line number so a
// damaged export can be located and reported.
type Decoder struct {
	r       *bufio.Reader
	line    int
	header  *Header
	hdrErr  error
	lineBuf []byte
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Header reads and validates the header line; later calls return the same
// result.
func (d *Decoder) Header() (Header, error) {
	if d.header == nil && d.hdrErr == nil {
		h, err := d.readHeader()
		if err != nil {
			d.hdrErr = err
		} else {
			d.header = &h
		}
	}
	if d.hdrErr != nil {
		return Header{}, d.hdrErr
	}
	return *d.header, nil
}

func (d *Decoder) readHeader() (Header, error) {
	line, err := d.readLine()
	if err == io.EOF {
		return Header{}, errors.New("line 1: empty asciicast stream: no header")
	}
	if err != nil {
		return Header{}, err
	}
	return d.parseHeader(line)
}

// parseHeader validates the header line, line d.line of the stream.
func (d *Decoder) parseHeader(line []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return Header{}, fmt.Errorf("line %d: asciicast header is not a JSON object: %w", d.line, err)
	}
	if h.Version != 2 {
		return Header{}, fmt.Errorf("line %d: asciicast version %d is not supported; only version 2 is", d.line, h.Version)
	}
	if h.Width <= 0 || h.Height <= 0 {
		return Header{}, fmt.Errorf("line %d: asciicast header size %dx%d; width and height must be positive", d.line, h.Width, h.Height)
	}
	if h.IdleTimeLimit < 0 {
		return Header{}, fmt.Errorf("line %d: asciicast idle_time_limit %v is negative", d.line, h.IdleTimeLimit)
	}
	return h, nil
}

// Next returns the next event, reading the header first if Header was not
// called. It returns io.EOF after the last event. Blank lines are skipped.
func (d *Decoder) Next() (Event, error) {
	if _, err := d.Header(); err != nil {
		return Event{}, err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return Event{}, fmt.Errorf("line %d: %w", d.line, err)
		}
		return ev, nil
	}
}

// readLine returns the next line without its line ending, or io.EOF when the
// stream has ended. The returned slice is valid until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	d.lineBuf = d.lineBuf[:0]
	for {
		chunk, err := d.r.ReadSlice('\n')
		d.lineBuf = append(d.lineBuf, chunk...)
		if len(d.lineBuf) > MaxLineBytes {
			return nil, fmt.Errorf("line %d: longer than %d bytes; the file is damaged or not an asciicast recording", d.line+1, MaxLineBytes)
		}
		switch {
		case err == nil:
			d.line++
			return bytes.TrimSuffix(bytes.TrimSuffix(d.lineBuf, []byte("\n")), []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(d.lineBuf) == 0 {
				return nil, io.EOF
			}
			d.line++
			return bytes.TrimSuffix(d.lineBuf, []byte("\r")), nil
		default:
			return nil, fmt.Errorf("line %d: read asciicast: %w", d.line+1, err)
		}
	}
}

// resizeData formats the data of an "r" event.
func resizeData(cols, rows int) string {
	return strconv.Itoa(cols) + "x" + strconv.Itoa(rows)
}
