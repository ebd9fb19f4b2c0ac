package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// The seek index of a recording.
//
// A player asked to jump to minute 59 of a one-hour, 200 MB recording must
// not decompress and decode the 58 minutes before it. So every stored chunk
// gets an index entry, written in the same transaction as the chunk: the
// times of its first and last event, its size, and where in it the whole
// screen was last cleared with the cursor sent home (a keyframe). With the
// entries a player finds the chunk holding any moment by binary search,
// and rebuilds the screen at that moment by replaying from the nearest
// keyframe at or before it, instead of from the start.
//
// Why keyframes are clear-screens and not screen snapshots: a snapshot
// needs a terminal emulator in the store's write path, on every byte of
// every session; a clear-screen is found with a few substring searches of
// the encoded chunk, and full-screen programs (editors, top, less, clear)
// emit one on every full redraw, which is exactly where an auditor seeks.
// The cost is that output which never clears the screen (a long `cat`)
// seeks by replaying from its start; see recorder/replay for the bound.
//
// Recordings stored before the index existed get their entries built on
// first use and cached (unless the store is read-only), so the cost of a
// full decode is paid once per recording.

// bucketChunkIndex holds one sub-bucket per session: seq → chunk entry.
var bucketChunkIndex = []byte("chunkindex")

// chunkEntryVersion leads every stored entry, so that a later layout can
// be told apart and rebuilt rather than misread.
const (
	chunkEntryVersion = 1
	chunkEntryLen     = 1 + 8*5
)

// ChunkInfo describes one stored chunk of a recording, for seeking.
type ChunkInfo struct {
	// Seq is the chunk's key, for ReadChunk.
	Seq uint64
	// Start and End are the times, in seconds since the session start,
	// of the chunk's first and last event.
	Start, End float64
	// Bytes is the size of the chunk's event lines, decompressed.
	Bytes int
	// Keyframe is the byte offset of the start of the last output line in
	// the chunk that clears the whole screen and homes the cursor, or -1
	// if none does. Replaying from that line on reproduces the screen
	// without anything before it.
	Keyframe int
	// KeyTime is the time of the keyframe line (meaningful when Keyframe
	// is not -1).
	KeyTime float64
}

// HasKeyframe reports whether the chunk clears the screen somewhere.
func (c ChunkInfo) HasKeyframe() bool { return c.Keyframe >= 0 }

// ChunkReader gives random access to a recording by chunk, for a player
// that seeks. BoltStore implements it; a Store that does not (the admin
// socket client) is read as one stream instead.
type ChunkReader interface {
	// ChunkIndex returns the index entries of every stored chunk of the
	// session, in order.
	ChunkIndex(ctx context.Context, id string) ([]ChunkInfo, error)
	// ReadChunk returns the event lines of one chunk, decompressed.
	ReadChunk(ctx context.Context, id string, seq uint64) ([]byte, error)
}

var _ ChunkReader = (*BoltStore)(nil)

// keyframePatterns are, in the JSON spelling of an event line, the ways
// programs clear the screen and home the cursor: ncurses' clear
// (ESC[H ESC[2J), top's home-and-erase-below, the reverse order, and a full
// reset (ESC c). A clear without a home leaves the cursor where it was,
// which a replay from that point cannot know, so it is not a keyframe.
var keyframePatterns = [][]byte{
	[]byte(`\u001b[H\u001b[2J`),
	[]byte(`\u001b[H\u001b[J`),
	[]byte(`\u001b[H\u001b[0J`),
	[]byte(`\u001b[1;1H\u001b[2J`),
	[]byte(`\u001b[1;1H\u001b[J`),
	[]byte(`\u001b[2J\u001b[H`),
	[]byte(`\u001b[2J\u001b[1;1H`),
	[]byte(`\u001bc`),
}

// IndexChunk builds the index entry of the event lines plain (complete
// lines, as AppendChunk stores them), for a store or a player that cuts a
// stream into chunks of its own.
func IndexChunk(seq uint64, plain []byte) (ChunkInfo, error) {
	return indexChunk(seq, plain, true)
}

// indexChunk is IndexChunk, searching for keyframes only if escapes: the
// caller knows that no output in plain held an ESC byte otherwise.
func indexChunk(seq uint64, plain []byte, escapes bool) (ChunkInfo, error) {
	info := ChunkInfo{Seq: seq, Bytes: len(plain), Keyframe: -1}
	body := bytes.TrimRight(plain, "\n")
	if len(body) == 0 {
		return info, errors.New("chunk holds no event line")
	}
	first := body
	if i := bytes.IndexByte(body, '\n'); i >= 0 {
		first = body[:i]
	}
	last := body[lastNewline(body)+1:]
	var err error
	if info.Start, err = lineTime(first); err != nil {
		return info, fmt.Errorf("first event: %w", err)
	}
	if info.End, err = lineTime(last); err != nil {
		return info, fmt.Errorf("last event: %w", err)
	}
	// Binary output ("b" lines, base64) holds no escapes: only the text
	// between them is searched. `,"b","` is only ever a type field, as
	// quotes inside a string are escaped.
	for lo := 0; escapes && lo < len(plain); {
		hi, next := len(plain), len(plain)
		if k := bytes.Index(plain[lo:], binaryTypeField); k >= 0 {
			hi = lastNewline(plain[:lo+k]) + 1
			if e := bytes.IndexByte(plain[lo+k:], '\n'); e >= 0 {
				next = lo + k + e + 1
			}
		}
		findKeyframes(plain, lo, hi, &info)
		lo = next
	}
	return info, nil
}

// binaryTypeField is what marks a "b" event line.
var binaryTypeField = []byte(`,"b","`)

// findKeyframes records in info the last keyframe that starts in
// plain[lo:hi], event lines with no "b" line among them.
func findKeyframes(plain []byte, lo, hi int, info *ChunkInfo) {
	// One pass over the escapes (ESC is spelt \u001b in an event line),
	// checking each against the patterns: this runs on every append, so
	// it must cost little next to compression.
	for i := lo; ; {
		// Look for the 'b' of \u001b: '\', 'u' and '0' fill the event
		// lines of zeros and of binary output, and '1' log text (times,
		// counters), so a search for any of them stops every few bytes;
		// 'b' is rare in all of them, and IndexByte is the fastest search.
		j := bytes.IndexByte(plain[i:hi], 'b')
		if j < 0 {
			break
		}
		if i+j < len(jsonESC)-1 || !bytes.Equal(plain[i+j-(len(jsonESC)-1):i+j], jsonESC[:len(jsonESC)-1]) {
			i += j + 1
			continue
		}
		i += j - (len(jsonESC) - 1)
		// Every pattern goes on with "[H", "[1;1H", "[2J" or "c": most
		// escapes (colours: "[32m") are passed over on two bytes.
		if n := i + len(jsonESC); n+1 >= hi || !(plain[n] == 'c' || plain[n] == '[' && (plain[n+1] == 'H' || plain[n+1] == '1' || plain[n+1] == '2')) {
			i += len(jsonESC)
			continue
		}
		for _, pat := range keyframePatterns {
			if bytes.HasPrefix(plain[i:], pat) {
				if ls, t, ok := keyframeAt(plain, i); ok {
					info.Keyframe, info.KeyTime = ls, t
				}
				break
			}
		}
		i += len(jsonESC)
	}
}

// jsonESC is ESC as encodeEvent spells it inside a JSON string.
var jsonESC = []byte(`\u001b`)

// keyframeAt checks a pattern found at i: a real escape (not an escaped
// backslash followed by the text "u001b") in an output line. It returns the
// start of that line and its time.
func keyframeAt(plain []byte, i int) (lineStart int, t float64, ok bool) {
	slashes := 0
	for j := i - 1; j >= 0 && plain[j] == '\\'; j-- {
		slashes++
	}
	if slashes%2 == 1 {
		return 0, 0, false
	}
	ls := lastNewline(plain[:i]) + 1
	le := bytes.IndexByte(plain[i:], '\n')
	if le < 0 {
		le = len(plain) - i
	}
	line := plain[ls : i+le]
	if !isOutputLine(line) {
		return 0, 0, false // typed input or a marker, not what the screen showed
	}
	lt, err := lineTime(line)
	if err != nil {
		return 0, 0, false
	}
	return ls, lt, true
}

// isOutputLine reports whether an encoded event line is an "o" event, as
// encodeEvent spells it: [TIME,"o","...
func isOutputLine(line []byte) bool {
	c := bytes.IndexByte(line, ',')
	return c > 1 && line[0] == '[' && bytes.HasPrefix(line[c:], []byte(`,"o","`))
}

// lineTime reads the time of an encoded event line: the number after '['
// in the recorder's spelling, else whatever encoding/json accepts.
func lineTime(line []byte) (float64, error) {
	if c := bytes.IndexByte(line, ','); c > 1 && line[0] == '[' {
		if t, err := strconv.ParseFloat(string(line[1:c]), 64); err == nil && t >= 0 && !math.IsInf(t, 0) {
			return t, nil
		}
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return 0, err
	}
	return ev.Time, nil
}

func encodeChunkInfo(c ChunkInfo) []byte {
	b := make([]byte, 0, chunkEntryLen)
	b = append(b, chunkEntryVersion)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.Start))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.End))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Bytes))
	b = binary.BigEndian.AppendUint64(b, uint64(int64(c.Keyframe)))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.KeyTime))
	return b
}

// decodeChunkInfo reads a stored entry; ok is false for an entry of
// another version or a damaged one, which is then rebuilt from its chunk.
func decodeChunkInfo(seq uint64, b []byte) (ChunkInfo, bool) {
	if len(b) != chunkEntryLen || b[0] != chunkEntryVersion {
		return ChunkInfo{}, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[1+8*i:]) }
	c := ChunkInfo{Seq: seq, Start: math.Float64frombits(u(0)), End: math.Float64frombits(u(1)),
		Bytes: int(u(2)), Keyframe: int(int64(u(3))), KeyTime: math.Float64frombits(u(4))}
	if c.Keyframe < -1 || c.Keyframe >= c.Bytes || c.Bytes < 0 || math.IsNaN(c.Start) || math.IsNaN(c.End) {
		return ChunkInfo{}, false
	}
	return c, true
}

// putChunkInfo stores the entry of chunk seq of session id, inside the
// transaction that stores the chunk.
func putChunkInfo(tx *bolt.Tx, id string, c ChunkInfo) error {
	ib, err := tx.CreateBucketIfNotExists(bucketChunkIndex)
	if err != nil {
		return fmt.Errorf("chunk index bucket: %w", err)
	}
	b, err := ib.CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return fmt.Errorf("chunk index of session %s: %w", id, err)
	}
	if err := b.Put(u64key(c.Seq), encodeChunkInfo(c)); err != nil {
		return fmt.Errorf("chunk index of session %s, chunk %d: %w", id, c.Seq, err)
	}
	return nil
}

// deleteChunkIndex removes the index of a session whose recording goes.
func deleteChunkIndex(tx *bolt.Tx, id string) error {
	ib := tx.Bucket(bucketChunkIndex)
	if ib == nil || ib.Bucket([]byte(id)) == nil {
		return nil
	}
	if err := ib.DeleteBucket([]byte(id)); err != nil {
		return fmt.Errorf("delete chunk index of session %s: %w", id, err)
	}
	return nil
}

// ChunkIndex returns the index of a session's recording. Entries missing
// (a recording stored before the index existed) or unreadable are built
// from their chunks and, when the store is writable, cached.
func (s *BoltStore) ChunkIndex(ctx context.Context, id string) ([]ChunkInfo, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("chunk index of session %s: %w", id, err)
	}
	defer s.mu.RUnlock()
	var out []ChunkInfo
	var missing []int // positions in out still to build
	err := s.db.View(func(tx *bolt.Tx) error {
		if _, err := getMeta(tx, id); err != nil {
			return err
		}
		var idx *bolt.Bucket
		if ib := tx.Bucket(bucketChunkIndex); ib != nil {
			idx = ib.Bucket([]byte(id))
		}
		ev := tx.Bucket(bucketEvents)
		if ev == nil || ev.Bucket([]byte(id)) == nil {
			return nil
		}
		c := ev.Bucket([]byte(id)).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("chunk key %x is not a sequence number", k)
			}
			seq := binary.BigEndian.Uint64(k)
			var info ChunkInfo
			ok := false
			if idx != nil {
				info, ok = decodeChunkInfo(seq, idx.Get(k))
			}
			if !ok {
				info = ChunkInfo{Seq: seq, Keyframe: -1}
				missing = append(missing, len(out))
			}
			out = append(out, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chunk index of session %s: %w", id, err)
	}
	if len(missing) == 0 {
		return out, nil
	}
	for _, i := range missing {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("chunk index of session %s: %w", id, err)
		}
		plain, err := s.readChunk(id, out[i].Seq)
		if err != nil {
			return nil, fmt.Errorf("chunk index of session %s: %w", id, err)
		}
		if out[i], err = IndexChunk(out[i].Seq, plain); err != nil {
			return nil, fmt.Errorf("chunk index of session %s: chunk %d is damaged: %w", id, out[i].Seq, err)
		}
	}
	if !s.db.IsReadOnly() {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, i := range missing {
				if err := putChunkInfo(tx, id, out[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cache chunk index of session %s: %w", id, err)
		}
	}
	return out, nil
}

// ReadChunk returns one chunk of a session's recording, decompressed.
func (s *BoltStore) ReadChunk(ctx context.Context, id string, seq uint64) ([]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("read chunk %d of session %s: %w", seq, id, err)
	}
	defer s.mu.RUnlock()
	return s.readChunk(id, seq)
}

// readChunk is ReadChunk for a caller holding s.mu.
func (s *BoltStore) readChunk(id string, seq uint64) ([]byte, error) {
	var z []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		var b *bolt.Bucket
		if ev := tx.Bucket(bucketEvents); ev != nil {
			b = ev.Bucket([]byte(id))
		}
		if b == nil {
			return fmt.Errorf("session %s has no recording: %w", id, ErrNotFound)
		}
		v := b.Get(u64key(seq))
		if v == nil {
			return fmt.Errorf("chunk %d of session %s: %w", seq, id, ErrNotFound)
		}
		z = bytes.Clone(v) // v is only valid inside the transaction
		return nil
	})
	if err != nil {
		return nil, err
	}
	plain, err := s.codec.decode(z, nil)
	if err != nil {
		return nil, fmt.Errorf("chunk %d of session %s is damaged: %w", seq, id, err)
	}
	return plain, nil
}

// lastNewline is bytes.LastIndexByte(b, '\n'), a word at a time:
// bytes.LastIndexByte goes byte by byte, and the last line of a piece of
// zeros is 400 KB of \u0000 that every append walked back over.
func lastNewline(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := len(b)
	for i >= 8 {
		x := binary.LittleEndian.Uint64(b[i-8:]) ^ '\n'*ones
		if (x-ones)&^x&highs != 0 {
			break // a newline among these eight bytes: find it below
		}
		i -= 8
	}
	for i > 0 {
		i--
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}
