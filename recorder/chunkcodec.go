package recorder

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

const (
	// trialBytes is how much of a piece is compressed first to see whether
	// compressing the rest is worth its time.
	trialBytes = 64 << 10
	// storeRawAbove is the compressed/plain ratio of the trial above which
	// a piece is stored in raw zstd blocks. Terminal text, logs and even
	// runs of escapes compress to a few percent; the event lines of binary
	// output (U+FFFD for every invalid byte, \u00XX for every control
	// byte) compress to about a third, at a tenth of the speed (60–80 MB/s
	// against 2 GB/s on this project's bench machine), so that the
	// recorder, not the network, would set the session's speed.
	storeRawAbove = 0.3
	// rawBlockBytes is the largest raw block zstd allows (128 KiB).
	rawBlockBytes = 128 << 10
)

// compressPiece returns the stored form of one piece of event lines: zstd,
// compressed or, for output that does not compress (binary data), made of
// raw blocks, which costs a copy instead of a search for matches. Either
// way the reader is the zstd decoder, and each frame carries its checksum.
// A compressible piece is stored as two frames, the trial's and the rest's,
// which the decoder reads as one stream: compressing the trial's bytes
// again was 6% of the recorder's zstd work, and the split costs nothing
// measurable in size.
func compressPiece(enc *zstd.Encoder, piece []byte) []byte {
	if len(piece) <= 2*trialBytes {
		return enc.EncodeAll(piece, make([]byte, 0, len(piece)/8))
	}
	trial := enc.EncodeAll(piece[:trialBytes], make([]byte, 0, len(piece)/8))
	if float64(len(trial)) > storeRawAbove*trialBytes {
		return appendRawFrame(make([]byte, 0, len(piece)+len(piece)/rawBlockBytes*3+32), piece)
	}
	return enc.EncodeAll(piece[trialBytes:], trial)
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
