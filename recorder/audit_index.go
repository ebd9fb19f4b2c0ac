package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The audit index makes a filtered query over millions of records answer
// its first page in milliseconds instead of decoding every record. It is
// derived data, outside the hash chain: the chain covers the records
// alone, so the index can be rebuilt at any time without touching the
// evidence, and a damaged index can only make a query slower or miss a
// record that `bastion audit verify` still checks.
//
// Keys (values are empty), all ending in the record's big-endian seq:
//
//	'u' user 0x00 seq        'g' target 0x00 seq     's' session 0x00 seq
//	'o' outcome 0x00 seq     'y' type 0x00 seq (also one key per family:
//	                          approval.filed is under "approval" too)
//	'T' unix-nanoseconds seq (the time index, for time ranges)
//
// A value holding a NUL byte is not indexed (it would blur the key
// boundary); a query for such a value is answered by the scan.
var bucketAuditIndex = []byte("audit_index")

// keyAuditIndexed in the meta bucket says the index covers every record.
var keyAuditIndexed = []byte("audit_index")

const (
	idxUser    = 'u'
	idxTarget  = 'g'
	idxSession = 's'
	idxOutcome = 'o'
	idxType    = 'y'
	idxTime    = 'T'
)

// eqPrefix is the key prefix of one indexed value, or nil when the value
// cannot be indexed.
func eqPrefix(kind byte, value string) []byte {
	if value == "" || strings.IndexByte(value, 0) >= 0 {
		return nil
	}
	k := make([]byte, 0, len(value)+10)
	k = append(k, kind)
	k = append(k, value...)
	return append(k, 0)
}

// typeKeys lists what a record's type is indexed under: every family
// ("approval") and the type itself ("approval.filed").
func typeKeys(typ string) []string {
	var out []string
	for i := range len(typ) {
		if typ[i] == '.' && i > 0 {
			out = append(out, typ[:i])
		}
	}
	return append(out, typ)
}

// indexEntry is one key of the index and its value: the record's time
// (unix nanoseconds, big-endian) on equality keys, so that a query with a
// time range skips records out of range without decoding them; empty on
// time keys and for times before 1970.
type indexEntry struct{ key, val []byte }

// indexKeys lists r's index entries.
func indexKeys(r AuditRecord) []indexEntry {
	seq := u64key(r.Seq)
	var when []byte
	if ns := r.Time.UnixNano(); ns >= 0 {
		when = u64key(uint64(ns))
	}
	var keys []indexEntry
	add := func(prefix []byte) {
		if prefix != nil {
			keys = append(keys, indexEntry{append(prefix, seq...), when})
		}
	}
	add(eqPrefix(idxUser, r.User))
	add(eqPrefix(idxTarget, r.Target))
	add(eqPrefix(idxSession, r.Session))
	add(eqPrefix(idxOutcome, r.Outcome))
	for _, t := range typeKeys(r.Type) {
		add(eqPrefix(idxType, t))
	}
	if when != nil {
		k := append([]byte{idxTime}, when...)
		keys = append(keys, indexEntry{key: append(k, seq...)})
	}
	return keys
}

// putSorted writes keys into idx in key order. bbolt keeps a bucket's
// new keys in one in-memory node until the commit splits it, so many
// unordered puts in one transaction cost quadratic copying (a million
// records took minutes); in order, each put appends.
func putSorted(idx *bolt.Bucket, keys []indexEntry) error {
	slices.SortFunc(keys, func(a, b indexEntry) int { return bytes.Compare(a.key, b.key) })
	for _, e := range keys {
		if err := idx.Put(e.key, e.val); err != nil {
			return err
		}
	}
	return nil
}

// indexed reports whether the index covers every record of the trail.
func indexed(tx *bolt.Tx) bool {
	m := tx.Bucket(bucketMeta)
	return m != nil && string(m.Get(keyAuditIndexed)) == "1"
}

// indexBuildBatch is how many records one transaction of buildAuditIndex
// indexes (a variable so that a test can make batches small).
var indexBuildBatch = 50000

// buildAuditIndex (re)builds the index of a store written before it
// existed, in transactions of indexBuildBatch records, before the store is
// handed out. The index counts only once its last batch is in (a crash
// midway rebuilds it from the start). A record that does not decode is
// left out (verify names it).
func buildAuditIndex(db *bolt.DB) error {
	// Nearly always the index is there: find out without a write
	// transaction (and its disk sync) on every open.
	var built bool
	if err := db.View(func(tx *bolt.Tx) error { built = indexed(tx); return nil }); err != nil {
		return fmt.Errorf("check the audit index: %w", err)
	}
	if built {
		return nil
	}
	var next uint64 = 1
	started := false
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if string(meta.Get(keyAuditIndexed)) == "1" {
				done = true
				return nil
			}
			if !started {
				if tx.Bucket(bucketAuditIndex) != nil {
					if err := tx.DeleteBucket(bucketAuditIndex); err != nil {
						return err
					}
				}
				if _, err := tx.CreateBucket(bucketAuditIndex); err != nil {
					return err
				}
			}
			idx := tx.Bucket(bucketAuditIndex)
			var keys []indexEntry
			n := 0
			if b := tx.Bucket(bucketAudit); b != nil {
				c := b.Cursor()
				for k, v := c.Seek(u64key(next)); k != nil && n < indexBuildBatch; k, v = c.Next() {
					n++
					if len(k) != 8 {
						continue
					}
					next = binary.BigEndian.Uint64(k) + 1
					var r AuditRecord
					if json.Unmarshal(v, &r) != nil {
						continue
					}
					r.Seq = next - 1
					keys = append(keys, indexKeys(r)...)
				}
			}
			if err := putSorted(idx, keys); err != nil {
				return err
			}
			if n < indexBuildBatch {
				done = true
				return meta.Put(keyAuditIndexed, []byte("1"))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("build the audit index: %w", err)
		}
		started = true
		if done {
			return nil
		}
	}
}

// seqIter walks the seqs of one indexed value downwards.
type seqIter struct {
	c      *bolt.Cursor
	prefix []byte
}

// atMost returns the largest seq ≤ s under the iterator's value, and the
// entry's value (the record's time, when known).
func (it seqIter) atMost(s uint64) (uint64, []byte, bool) {
	seek := append(bytes.Clone(it.prefix), u64key(s)...)
	k, v := it.c.Seek(seek)
	if k == nil {
		k, v = it.c.Last()
	} else if !bytes.Equal(k, seek) {
		k, v = it.c.Prev()
	}
	// Keys of one value are contiguous and all len(prefix)+8 long (no
	// indexed value holds a NUL), so the nearest key below is ours or
	// there is none.
	if k == nil || len(k) != len(it.prefix)+8 || !bytes.HasPrefix(k, it.prefix) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(k[len(it.prefix):]), v, true
}

// outOfRange reports whether an index entry's time (val) is known and
// outside f's time range.
func outOfRange(f AuditFilter, val []byte) bool {
	if len(val) != 8 || (f.Since.IsZero() && f.Until.IsZero()) {
		return false
	}
	t := int64(binary.BigEndian.Uint64(val))
	return (!f.Since.IsZero() && t < f.Since.UnixNano()) || (!f.Until.IsZero() && t >= f.Until.UnixNano())
}

// listIndexed answers f from the index, newest first, calling emit with
// every candidate (emit applies the whole filter and returns false to
// stop). It returns done=false when no index applies, so the caller scans.
func listIndexed(ctx context.Context, b, idx *bolt.Bucket, f AuditFilter, emit func(AuditRecord) bool) (done bool, err error) {
	var its []seqIter
	add := func(kind byte, value string) {
		if p := eqPrefix(kind, value); p != nil {
			its = append(its, seqIter{c: idx.Cursor(), prefix: p})
		}
	}
	add(idxSession, f.Session)
	add(idxUser, f.User)
	add(idxTarget, f.Target)
	add(idxType, strings.TrimSuffix(f.Type, "."))
	add(idxOutcome, f.Outcome)
	pre := textPrefilter(f.Text)
	fetch := func(seq uint64) (AuditRecord, bool, error) {
		v := b.Get(u64key(seq))
		if v == nil {
			return AuditRecord{}, false, nil // indexed but gone: verify reports it
		}
		if pre != nil && !containsFold(v, pre) {
			return AuditRecord{}, false, nil
		}
		var r AuditRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return r, false, fmt.Errorf("decode audit record %d: %w", seq, err)
		}
		return r, true, nil
	}
	steps := 0
	checkCtx := func() error {
		if steps++; steps%4096 == 0 {
			return ctx.Err()
		}
		return nil
	}
	if len(its) > 0 {
		// Leapfrog intersection: every iterator must agree on the
		// candidate; one that lands lower lowers it.
		cand := b.Sequence()
		for cand > f.After {
			if err := checkCtx(); err != nil {
				return true, err
			}
			agreed := true
			var when []byte
			for _, it := range its {
				s, v, ok := it.atMost(cand)
				if !ok {
					return true, nil
				}
				if s < cand {
					cand, agreed = s, false
					break
				}
				when = v
			}
			if !agreed {
				continue
			}
			if outOfRange(f, when) {
				cand--
				continue
			}
			r, ok, err := fetch(cand)
			if err != nil {
				return true, err
			}
			if ok && !emit(r) {
				return true, nil
			}
			cand--
		}
		return true, nil
	}
	if f.Since.IsZero() && f.Until.IsZero() {
		return false, nil
	}
	// A time range alone: walk the time index from Until down to Since.
	var lo, hi uint64 = 0, math.MaxUint64
	if !f.Since.IsZero() && f.Since.UnixNano() > 0 {
		lo = uint64(f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		if f.Until.UnixNano() <= 0 {
			return true, nil
		}
		hi = uint64(f.Until.UnixNano())
	}
	c := idx.Cursor()
	start := binary.BigEndian.AppendUint64([]byte{idxTime}, hi)
	k, _ := c.Seek(start)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && len(k) == 17 && k[0] == idxTime; k, _ = c.Prev() {
		if err := checkCtx(); err != nil {
			return true, err
		}
		if binary.BigEndian.Uint64(k[1:9]) < lo {
			return true, nil
		}
		seq := binary.BigEndian.Uint64(k[9:])
		if seq <= f.After {
			continue
		}
		r, ok, err := fetch(seq)
		if err != nil {
			return true, err
		}
		if ok && !emit(r) {
			return true, nil
		}
	}
	return true, nil
}
