package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// bbolt's file header: two meta pages, each a 16-byte page header then the
// meta: magic, version, page size, flags, root bucket (16), freelist pgid,
// high-water pgid, txid, checksum.
const (
	boltMagic      = 0xED0CDAED
	metaOffMagic   = 16
	metaOffPgSize  = 24
	metaOffHWM     = 56
	metaOffTxID    = 64
	boltHeaderSize = 4096
)

// checkStoreFile refuses a store file shorter than the pages its own
// header says are in use, before bbolt maps it: bbolt trusts its header and
// a truncated file makes it panic, or fault with SIGBUS (which no recover
// catches), while reading the freelist. A missing or empty file is fine
// (bbolt creates it); a file that is not a bbolt file at all is left to
// bbolt, which says so.
func checkStoreFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	head := make([]byte, boltHeaderSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	head = head[:n]
	// The meta with the highest transaction id is the one bbolt uses; the
	// second meta page sits one page further, so read it too if we can.
	var best struct{ txid, hwm, pageSize uint64 }
	read := func(b []byte) {
		if len(b) < metaOffTxID+8 || binary.LittleEndian.Uint32(b[metaOffMagic:]) != boltMagic {
			return
		}
		ps := uint64(binary.LittleEndian.Uint32(b[metaOffPgSize:]))
		tx := binary.LittleEndian.Uint64(b[metaOffTxID:])
		if ps == 0 || tx < best.txid {
			return
		}
		best.txid, best.hwm, best.pageSize = tx, binary.LittleEndian.Uint64(b[metaOffHWM:]), ps
	}
	read(head)
	if best.pageSize == 0 {
		return nil // not a bbolt header: bbolt's own error is clear
	}
	second := make([]byte, metaOffTxID+8)
	if _, err := f.ReadAt(second, int64(best.pageSize)); err == nil {
		read(second)
	}
	if need := best.hwm * best.pageSize; best.hwm > 0 && uint64(size) < need {
		return fmt.Errorf("store %s is truncated: its header says %d pages of %d bytes are in use (%d bytes), the file has %d; restore it from a backup (the file was not changed)",
			path, best.hwm, best.pageSize, need, size)
	}
	return nil
}
