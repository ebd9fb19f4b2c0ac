package replay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/bastion-dev/bastion/recorder"
)

// Source is a recording the player can seek in: an index of its chunks by
// time (recorder.ChunkInfo) and the events of any one chunk.
type Source interface {
	// Index returns the chunks in order. It must not change.
	Index() []recorder.ChunkInfo
	// Events decodes chunk i from byte offset from on (0, or the chunk's
	// Keyframe).
	Events(ctx context.Context, i, from int) ([]recorder.Event, error)
}

// StoreSource reads a recording straight from the store, a chunk at a
// time: a seek decodes the chunks between the nearest keyframe and the
// target, never the whole recording.
type StoreSource struct {
	r     recorder.ChunkReader
	id    string
	index []recorder.ChunkInfo
}

// OpenStore reads the chunk index of session id (building it once for a
// recording stored before the index existed).
func OpenStore(ctx context.Context, r recorder.ChunkReader, id string) (*StoreSource, error) {
	index, err := r.ChunkIndex(ctx, id)
	if err != nil {
		return nil, err
	}
	return &StoreSource{r: r, id: id, index: index}, nil
}

// Index implements Source.
func (s *StoreSource) Index() []recorder.ChunkInfo { return s.index }

// Events implements Source.
func (s *StoreSource) Events(ctx context.Context, i, from int) ([]recorder.Event, error) {
	if i < 0 || i >= len(s.index) {
		return nil, fmt.Errorf("recording %s: no chunk %d", s.id, i)
	}
	lines, err := s.r.ReadChunk(ctx, s.id, s.index[i].Seq)
	if err != nil {
		return nil, err
	}
	evs, err := decodeLines(lines, from)
	if err != nil {
		return nil, fmt.Errorf("recording %s, chunk %d: %w", s.id, s.index[i].Seq, err)
	}
	return evs, nil
}

// StreamSource holds a whole recording read from an asciicast stream, for
// a store reached only as a stream (the running server's admin socket).
// It cuts the stream into chunks of about streamChunkBytes and indexes them
// as the store does, so seeking works the same; the cost is reading the
// whole recording first and keeping it in memory.
type StreamSource struct {
	chunks [][]byte
	index  []recorder.ChunkInfo
}

const streamChunkBytes = 1 << 20

// ReadStream reads an asciicast v2 stream into a StreamSource.
func ReadStream(ctx context.Context, r io.Reader) (*StreamSource, recorder.Header, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), recorder.MaxLineBytes+1)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, recorder.Header{}, fmt.Errorf("read recording: %w", err)
		}
		return nil, recorder.Header{}, errors.New("read recording: empty stream: no asciicast header")
	}
	h, err := recorder.NewDecoder(bytes.NewReader(sc.Bytes())).Header()
	if err != nil {
		return nil, recorder.Header{}, fmt.Errorf("read recording: %w", err)
	}
	s := &StreamSource{}
	var cur []byte
	cut := func() error {
		if len(cur) == 0 {
			return nil
		}
		info, err := recorder.IndexChunk(uint64(len(s.chunks)+1), cur)
		if err != nil {
			return fmt.Errorf("read recording: chunk %d: %w", len(s.chunks)+1, err)
		}
		s.chunks, s.index, cur = append(s.chunks, cur), append(s.index, info), nil
		return nil
	}
	for line := 2; sc.Scan(); line++ {
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, h, fmt.Errorf("read recording: %w", err)
			}
		}
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if b[0] != '[' {
			return nil, h, fmt.Errorf("read recording: line %d is not an event [time, type, data]", line)
		}
		cur = append(append(cur, b...), '\n')
		if len(cur) >= streamChunkBytes {
			if err := cut(); err != nil {
				return nil, h, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, h, fmt.Errorf("read recording: %w", err)
	}
	if err := cut(); err != nil {
		return nil, h, err
	}
	return s, h, nil
}

// Index implements Source.
func (s *StreamSource) Index() []recorder.ChunkInfo { return s.index }

// Events implements Source.
func (s *StreamSource) Events(_ context.Context, i, from int) ([]recorder.Event, error) {
	if i < 0 || i >= len(s.chunks) {
		return nil, fmt.Errorf("recording: no chunk %d", i)
	}
	evs, err := decodeLines(s.chunks[i], from)
	if err != nil {
		return nil, fmt.Errorf("recording, chunk %d: %w", i+1, err)
	}
	return evs, nil
}

// decodeLines decodes the event lines of a chunk from byte offset from.
func decodeLines(lines []byte, from int) ([]recorder.Event, error) {
	if from < 0 || from > len(lines) {
		return nil, fmt.Errorf("offset %d is outside the chunk's %d bytes", from, len(lines))
	}
	var evs []recorder.Event
	for rest := lines[from:]; len(rest) > 0; {
		n := bytes.IndexByte(rest, '\n')
		line := rest
		if n >= 0 {
			line, rest = rest[:n], rest[n+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := recorder.ParseEventLine(line)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", len(evs)+1, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// Length is the time of the last event of the recording indexed.
func Length(index []recorder.ChunkInfo) float64 {
	if len(index) == 0 {
		return 0
	}
	return index[len(index)-1].End
}

// SeekPlan says where rendering starts to show the screen as it was at a
// point in time.
type SeekPlan struct {
	// Reset is true when the screen must be cleared and rendering start at
	// Chunk, Offset; false when playing on from the current position
	// reaches the target with less output.
	Reset  bool
	Chunk  int
	Offset int
	// Tail is true when neither is near: more than nearBytes of recording
	// between the last keyframe and the target, and between the current
	// position and the target. The screen is then rebuilt from the last
	// lines of output before the target (the player's seekTail), so that a
	// seek costs a chunk or two whatever the recording holds.
	Tail bool
}

// nearBytes is how much recording (event lines) may lie between a
// keyframe, or the current position, and the target for rendering from it
// to be worth it: a few tens of milliseconds of decoding and drawing.
const nearBytes = 4 << 20

// PlanSeek plans a move from pos to target: from the last keyframe at or
// before target, or on from pos when that is nearer, or from the tail of
// the output before target when both are far (see SeekPlan.Tail). The work
// is then bounded by a few chunks, whatever the recording's length.
func PlanSeek(index []recorder.ChunkInfo, target, pos float64) SeekPlan {
	chunkOf := func(t float64) int {
		return max(sort.Search(len(index), func(i int) bool { return index[i].Start > t })-1, 0)
	}
	// far reports whether the chunks from..to (inclusive) hold more than
	// nearBytes.
	far := func(from, to int) bool {
		n := 0
		for j := max(from, 0); j <= to && j < len(index); j++ {
			if n += index[j].Bytes; n > nearBytes {
				return true
			}
		}
		return false
	}
	c := chunkOf(target)
	kc, koff, ktime := -1, 0, 0.0
	for j := min(c, len(index)-1); j >= 0; j-- {
		if index[j].HasKeyframe() && index[j].KeyTime <= target {
			kc, koff, ktime = j, index[j].Keyframe, index[j].KeyTime
			break
		}
	}
	if target >= pos && (kc < 0 || ktime <= pos) {
		if far(chunkOf(pos), c) {
			return SeekPlan{Tail: true}
		}
		return SeekPlan{}
	}
	if kc < 0 {
		if far(0, c) {
			return SeekPlan{Tail: true}
		}
		return SeekPlan{Reset: true}
	}
	if far(kc, c) {
		return SeekPlan{Tail: true}
	}
	return SeekPlan{Reset: true, Chunk: kc, Offset: koff}
}
