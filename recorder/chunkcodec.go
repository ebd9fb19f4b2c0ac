package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// The stored form of a chunk of event lines. Both kinds are standard,
// self-describing formats with a checksum of the content, told apart by
// their first bytes:
//
//   - an S2 stream (klauspost/compress/s2, the Snappy framing format with
//     S2 blocks and a CRC-32C per block): what the store writes for text.
//     On service logs it compresses to 0.20 of the size at 590 MB/s a core
//     on the bench machine, against zstd's fastest level at 0.14 and
//     180–260 MB/s. A recording is written once, while a user waits on
//     the session, and read rarely: the recorder's CPU is what sets a busy
//     session's speed (zstd was a third of the bastion's CPU streaming
//     log text), so the store spends disk instead.
//   - a zstd frame: what the store wrote before (read for ever), and the
//     raw-block frames of output that does not compress (below).
const (
	// trialBytes is how much of a piece is compressed first to see whether
	// compressing the rest is worth its time.
	trialBytes = 64 << 10
	// storeRawAbove is the compressed/plain ratio of the trial above which
	// a piece is stored in raw zstd blocks. Terminal text, logs and even
	// runs of escapes compress to a few percent; binary output, base64 in
	// "b" events, and text made mostly of controls (\u00XX each) compress
	// to a half or not at all, at a fraction of the speed, so that the
	// recorder, not the network, would set the session's speed.
	storeRawAbove = 0.3
	// rawBlockBytes is the largest raw block zstd allows (128 KiB).
	rawBlockBytes = 128 << 10
	// s2BlockBytes is the S2 stream's block size: a piece is one block or
	// a few.
	s2BlockBytes = 1 << 20
	// s2SmallBlockBytes is the block size of the writers for pieces that
	// fit in one such block, which is most of them (an idle or interactive
	// session flushes a few bytes at a time). A writer holds two buffers of
	// its block size: a pooled 1 MiB writer per small piece made each
	// garbage collection drop 2 MiB per writer and the next flush allocate
	// and zero them again, which is much of what a burst of new sessions
	// left in the process's resident memory. The stream is the same: one
	// block, which any reader takes.
	s2SmallBlockBytes = 64 << 10
	// rawFrameCap is the capacity of the reused buffers raw frames are
	// built in: a recorder's piece (pieceBufBytes) with its block headers
	// fits. Larger pieces get a buffer of their own.
	rawFrameCap = 2 << 20
)

// s2Magic is the stream identifier chunk that starts every S2 stream.
var s2Magic = []byte("\xff\x06\x00\x00S2sTwO")

// chunkCodec writes and reads stored chunks; it is safe for concurrent
// use. The zero value is not ready: use newChunkCodec.
type chunkCodec struct {
	zdec    *zstd.Decoder
	writers sync.Pool // *s2.Writer with blocks of s2BlockBytes
	small   sync.Pool // *s2.Writer with blocks of s2SmallBlockBytes
	readers sync.Pool // *s2.Reader
	// trials and frames are buffers for the trial compression and for raw
	// frames (*[]byte). Binary output makes a raw frame of every piece:
	// allocating (and zeroing) a new one each time cost as much as the
	// copy into it.
	trials sync.Pool
	frames sync.Pool
}

func newChunkCodec() (*chunkCodec, error) {
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecodedChunk))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &chunkCodec{zdec: zdec}, nil
}

// close releases the zstd decoder's goroutines.
func (c *chunkCodec) close() { c.zdec.Close() }

// encode returns the stored form of one piece of event lines: an S2
// stream, or, for output that does not compress (binary data), a zstd
// frame of raw blocks, which costs a copy instead of a search for matches.
func (c *chunkCodec) encode(piece []byte) []byte {
	if len(piece) > 2*trialBytes {
		buf, _ := c.trials.Get().(*[]byte)
		if buf == nil {
			b := make([]byte, s2.MaxEncodedLen(trialBytes))
			buf = &b
		}
		trial := len(s2.Encode(*buf, piece[:trialBytes]))
		c.trials.Put(buf)
		if float64(trial) > storeRawAbove*trialBytes {
			return appendRawFrame(c.frameBuf(len(piece)+len(piece)/rawBlockBytes*3+32), piece)
		}
	}
	pool, block := &c.writers, s2BlockBytes
	if len(piece) <= s2SmallBlockBytes {
		pool, block = &c.small, s2SmallBlockBytes
	}
	w, _ := pool.Get().(*s2.Writer)
	if w == nil {
		w = s2.NewWriter(nil, s2.WriterConcurrency(1), s2.WriterBlockSize(block))
	}
	out := bytes.NewBuffer(make([]byte, 0, len(piece)/4+64))
	w.Reset(out)
	// Writing to a bytes.Buffer cannot fail, and piece is in memory.
	_, werr := w.Write(piece)
	cerr := w.Close()
	pool.Put(w)
	if err := errors.Join(werr, cerr); err != nil {
		// Not reached (the writer's only errors are its writer's); keep
		// the evidence in the raw form rather than lose it.
		return appendRawFrame(nil, piece)
	}
	return out.Bytes()
}

// frameBuf returns an empty buffer for a raw frame of n bytes: a reused one
// if it fits.
func (c *chunkCodec) frameBuf(n int) []byte {
	if n > rawFrameCap {
		return make([]byte, 0, n)
	}
	if buf, ok := c.frames.Get().(*[]byte); ok {
		return (*buf)[:0]
	}
	return make([]byte, 0, rawFrameCap)
}

// release takes back a stored chunk that encode returned once the store
// no longer needs it (its commit is done), for a later raw frame: any
// buffer of the frames' capacity will do. Others are left to the collector.
func (c *chunkCodec) release(stored []byte) {
	if cap(stored) == rawFrameCap {
		stored = stored[:0]
		c.frames.Put(&stored)
	}
}

// decode appends the event lines of a stored chunk to dst. A chunk that
// would decode to more than maxDecodedChunk is refused as damaged.
func (c *chunkCodec) decode(stored, dst []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, s2Magic) {
		return c.zdec.DecodeAll(stored, dst)
	}
	r, _ := c.readers.Get().(*s2.Reader)
	if r == nil {
		r = s2.NewReader(nil, s2.ReaderMaxBlockSize(s2BlockBytes))
	}
	defer c.readers.Put(r)
	r.Reset(bytes.NewReader(stored))
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, maxDecodedChunk+1))
	if err != nil {
		return dst, fmt.Errorf("s2 stream: %w", err)
	}
	if n > maxDecodedChunk {
		return dst, fmt.Errorf("s2 stream decodes to more than %d bytes", maxDecodedChunk)
	}
	return buf.Bytes(), nil
}

// appendRawFrame appends src as one zstd frame of raw blocks (RFC 8878,
// section 3.1.1): the frame header with the content size and a single
// segment, blocks of at most 128 KiB with a 3-byte header each, and the
// content checksum (the low 32 bits of XXH64) that klauspost's encoder
// writes too, so that damage is found on reading either kind of frame.
func appendRawFrame(dst, src []byte) []byte {
	const (
		magic = 0xFD2FB528
		// Frame_Header_Descriptor: Frame_Content_Size_flag 3 (8 bytes),
		// Single_Segment_flag, Content_Checksum_flag; no dictionary.
		descriptor = 3<<6 | 1<<5 | 1<<2
		rawBlock   = 0 << 1 // Block_Type Raw_Block
	)
	dst = binary.LittleEndian.AppendUint32(dst, magic)
	dst = append(dst, descriptor)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(src)))
	rest := src
	for {
		n := min(len(rest), rawBlockBytes)
		header := uint32(n)<<3 | rawBlock
		if n == len(rest) {
			header |= 1 // Last_Block
		}
		dst = append(dst, byte(header), byte(header>>8), byte(header>>16))
		dst = append(dst, rest[:n]...)
		rest = rest[n:]
		if len(rest) == 0 {
			break
		}
	}
	return binary.LittleEndian.AppendUint32(dst, uint32(xxhash.Sum64(src)))
}
