package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/internal/vecstate"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket layout of the bbolt file. Integer keys are big-endian so that key
// order is numeric order; session ids from NewSessionID are time-ordered.
var (
	bucketMeta     = []byte("meta")     // "schema" → schemaVersion
	bucketSessions = []byte("sessions") // id → JSON SessionMeta
	bucketEvents   = []byte("events")   // id → bucket: seq → compressed chunk of event lines (chunkcodec.go)
	bucketCerts    = []byte("certs")    // serial → JSON CertRecord; the bucket sequence is the last serial
	bucketRevoked  = []byte("revoked")  // sub-buckets below
	bucketRevSer   = []byte("serial")   // serial → JSON Revocation
	bucketRevUser  = []byte("user")     // user 0x00 at(unix ns) → JSON Revocation
	keySchema      = []byte("schema")
)

// schemaVersion is the store layout this bastion writes. Version 2 stores
// recording chunks as S2 streams (chunkcodec.go), which a bastion that
// reads version 1 would report as damage; it reads version 1 stores (zstd
// chunks) as they are, and marks them 2 when it opens them for writing, so
// that an older bastion refuses the file with a clear message instead.
const schemaVersion = "2"

// readsSchema reports whether this bastion reads a store of version v.
func readsSchema(v string) bool { return v == "1" || v == schemaVersion }

const (
	// DefaultOpenTimeout is how long OpenBolt waits for the file lock when
	// BoltOptions.Timeout is zero: long enough to ride out a restart, short
	// enough that a command run next to a live server answers promptly.
	DefaultOpenTimeout = time.Second
	// maxChunkBytes bounds one AppendChunk call before compression.
	maxChunkBytes = 256 << 20
	// storedChunkBytes is the most encoded lines stored under one key: an
	// append is split at line ends into pieces this big, all written in
	// one transaction, so a fast session costs one commit per flush, and
	// a replay never decodes more than a piece at once.
	storedChunkBytes = 4 << 20
	// maxDecodedChunk bounds a chunk after decompression, so a damaged
	// chunk cannot make a replay allocate without limit.
	maxDecodedChunk = 64 << 20
	// writePageBytes is how much compressed data WriteRecording reads per
	// read transaction: a slow reader must not hold a transaction open (a
	// long read transaction stalls the writer when the file has to grow).
	writePageBytes = 1 << 20
)

// BoltOptions tune OpenBolt.
type BoltOptions struct {
	// ReadOnly opens the file for reading only (a stopped server's store).
	ReadOnly bool
	// Timeout bounds the wait for the file lock; zero means
	// DefaultOpenTimeout.
	Timeout time.Duration
}

// BoltStore is the Store in one bbolt file. bbolt takes an exclusive lock on
// the file, so the running server is its only writer; other processes talk
// to the server through its admin socket.
//
// Chunks are compressed (chunkcodec.go: S2 streams, and zstd frames from
// stores written before and for output that does not compress), by
// klauspost/compress, which is well maintained and has assembly for both.
type BoltStore struct {
	db    *bolt.DB
	path  string
	codec *chunkCodec

	// mu is held shared by every operation and exclusively by Close, so a
	// recorder still writing after shutdown gets ErrStoreClosed instead of
	// touching a closed file or codec.
	mu     sync.RWMutex
	closed bool

	// audit serialises appends to the audit trail and tells OnAudit
	// observers of each record.
	audit auditObservers
	// chunks is the group commit of recording appends: many sessions
	// share a commit, and a lone fast session does not wait for company.
	chunks groupCommit[*chunkAppend]
}

// maxChunkCommit bounds the stored bytes one commit of recording chunks
// takes from the queue.
const maxChunkCommit = 64 << 20

// ErrStoreClosed is returned by the methods of a closed BoltStore.
var ErrStoreClosed = errors.New("store is closed")

// enter starts an operation: it checks ctx and takes the shared lock, which
// the caller releases with s.mu.RUnlock.
func (s *BoltStore) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrStoreClosed
	}
	return nil
}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens the store at path, creating it with mode 0600 if needed. A
// second opener gives up after opts.Timeout with an error that says where
// the running server listens, rather than hanging.
func OpenBolt(path string, opts BoltOptions) (*BoltStore, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	if err := checkStoreFile(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		// The store lives in data_dir, next to the server's admin socket.
		sock := filepath.Join(filepath.Dir(path), "admin.sock")
		return nil, fmt.Errorf("store %s is locked by a running bastion; the on-host commands talk to it through %s: %w", path, sock, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &BoltStore{db: db, path: path}
	s.audit.commits.max = maxAuditBatch
	s.chunks.max = maxChunkCommit
	if err := s.init(opts.ReadOnly); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if !opts.ReadOnly {
		if err := buildAuditIndex(db); err != nil {
			return nil, errors.Join(fmt.Errorf("open store %s: %w", path, err), db.Close())
		}
	}
	s.codec, err = newChunkCodec()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s: %w", path, err), db.Close())
	}
	return s, nil
}

// init creates the buckets and checks the schema version, so that a file
// written by a newer bastion is refused instead of misread.
func (s *BoltStore) init(readOnly bool) error {
	check := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return nil
		}
		if v := b.Get(keySchema); v != nil && !readsSchema(string(v)) {
			return fmt.Errorf("store %s has schema version %s; this bastion reads version %s: upgrade bastion", s.path, v, schemaVersion)
		}
		return nil
	}
	if readOnly {
		return s.db.View(check)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketMeta, bucketSessions, bucketEvents, bucketCerts, bucketRevoked} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("init store %s: bucket %s: %w", s.path, name, err)
			}
		}
		rev := tx.Bucket(bucketRevoked)
		for _, name := range [][]byte{bucketRevSer, bucketRevUser} {
			if _, err := rev.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("init store %s: bucket revoked/%s: %w", s.path, name, err)
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte(schemaVersion)); err != nil {
			return fmt.Errorf("init store %s: schema: %w", s.path, err)
		}
		return nil
	})
}

// Path returns the file the store was opened from.
func (s *BoltStore) Path() string { return s.path }

// Close waits for running operations and releases the file lock; later
// calls of any method return ErrStoreClosed.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.codec.close()
	return s.db.Close()
}

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// validMeta checks a row before it is written.
func validMeta(m SessionMeta) error {
	if err := CheckSessionID(m.ID); err != nil {
		return err
	}
	if !m.State.valid() {
		return fmt.Errorf("session %s: state %q is not one of active, closed, interrupted", m.ID, m.State)
	}
	if m.Start.IsZero() {
		return fmt.Errorf("session %s: start time is missing", m.ID)
	}
	return nil
}

func getMeta(tx *bolt.Tx, id string) (SessionMeta, error) {
	b := tx.Bucket(bucketSessions)
	var v []byte
	if b != nil {
		v = b.Get([]byte(id))
	}
	if v == nil {
		return SessionMeta{}, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	var m SessionMeta
	if err := json.Unmarshal(v, &m); err != nil {
		return SessionMeta{}, fmt.Errorf("session %s: decode stored row: %w", id, err)
	}
	return m, nil
}

func putMeta(tx *bolt.Tx, m SessionMeta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("session %s: encode row: %w", m.ID, err)
	}
	if err := tx.Bucket(bucketSessions).Put([]byte(m.ID), v); err != nil {
		return fmt.Errorf("session %s: store row: %w", m.ID, err)
	}
	return nil
}

// CreateSession adds the row and the session's events bucket. Many sessions
// start at once on a busy bastion, so the write goes through DB.Batch.
func (s *BoltStore) CreateSession(ctx context.Context, meta SessionMeta) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("create session %s: %w", meta.ID, err)
	}
	defer s.mu.RUnlock()
	if err := validMeta(meta); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSessions).Get([]byte(meta.ID)) != nil {
			return fmt.Errorf("create session %s: %w", meta.ID, ErrExists)
		}
		if _, err := tx.Bucket(bucketEvents).CreateBucketIfNotExists([]byte(meta.ID)); err != nil {
			return fmt.Errorf("create session %s: events bucket: %w", meta.ID, err)
		}
		return putMeta(tx, meta)
	})
}

// checkChunk verifies that events are whole event lines of valid UTF-8, so
// that the stored recording always concatenates into a valid file.
func checkChunk(events []byte) error {
	switch {
	case len(events) == 0:
		return errors.New("chunk is empty")
	case len(events) > maxChunkBytes:
		return fmt.Errorf("chunk of %d bytes is larger than %d", len(events), maxChunkBytes)
	case events[0] != '[':
		return errors.New("chunk does not start with an event line '['")
	case events[len(events)-1] != '\n':
		return errors.New("chunk does not end with a newline: event lines must be complete")
	}
	return nil
}

// errInvalidUTF8 refuses a chunk that is not valid UTF-8.
var errInvalidUTF8 = errors.New("chunk is not valid UTF-8")

// PreparedChunk is complete event lines in a store's stored form: checked,
// compressed and indexed by PrepareChunk, written by AppendPrepared.
type PreparedChunk struct {
	stored []byte    // an S2 stream or a zstd frame (chunkcodec.go)
	info   ChunkInfo // seek index entry, Seq filled in on append; Bytes < 0: none
}

// Size returns the length of the stored form: the memory a prepared chunk
// holds until it is appended.
func (c PreparedChunk) Size() int { return len(c.stored) }

// PrepareChunk checks that events are whole event lines of valid UTF-8,
// then compresses and indexes them as one stored chunk, the unit a replay
// seeks to. It writes nothing and does not keep events, and it may run
// concurrently with any other call: the recorder prepares each piece of
// about a megabyte as soon as it is encoded, while the piece is still in
// the CPU's cache, and appends a flush's pieces in one commit.
func (s *BoltStore) PrepareChunk(events []byte) (PreparedChunk, error) {
	return s.prepareChunk(events, true, true)
}

// PrepareEncoded is PrepareChunk for event lines that the recorder's own
// encoder wrote (appendEventLine), which are valid UTF-8 by construction
// (FuzzAppendEventLine holds it to that): it skips the UTF-8 check, and
// checks everything else. On binary output the event lines are 2.6 times
// the output, a U+FFFD or an escape for most bytes, and the check was a
// sixth of the bastion's CPU.
//
// With escapes false (the recorder saw no ESC byte in the output of these
// lines) the index skips its search for keyframes: on log text that
// search stops at every line, and the recorder's check of the raw output
// costs a small part of it.
func (s *BoltStore) PrepareEncoded(events []byte, escapes bool) (PreparedChunk, error) {
	return s.prepareChunk(events, false, escapes)
}

// prepareChunk is PrepareChunk, with the UTF-8 check if checkUTF8 and the
// search for keyframes if escapes.
func (s *BoltStore) prepareChunk(events []byte, checkUTF8, escapes bool) (PreparedChunk, error) {
	if err := s.enter(context.Background()); err != nil {
		return PreparedChunk{}, fmt.Errorf("prepare chunk: %w", err)
	}
	defer s.mu.RUnlock()
	if err := checkChunk(events); err != nil {
		return PreparedChunk{}, fmt.Errorf("prepare chunk: %w", err)
	}
	if len(events) > maxDecodedChunk {
		// The reader refuses such a chunk as damage: refuse it here,
		// while the caller can still cut it (at line ends).
		return PreparedChunk{}, fmt.Errorf("prepare chunk: %d bytes of event lines is larger than %d, the most one chunk may hold; cut them at line ends", len(events), maxDecodedChunk)
	}
	if checkUTF8 && !validUTF8(events) {
		return PreparedChunk{}, fmt.Errorf("prepare chunk: %w", errInvalidUTF8)
	}
	info, err := indexChunk(0, events, escapes)
	if err != nil {
		info.Bytes = -1 // no entry: ChunkIndex rebuilds it and reports the damage
	}
	return PreparedChunk{stored: s.codec.encode(events), info: info}, nil
}

// AppendChunk stores events as the next chunks of the session: it cuts them
// at line ends into pieces of at most storedChunkBytes (a single longer line
// is stored whole, up to maxDecodedChunk), prepares the pieces in parallel (compression is most of
// an append's CPU) and appends them in one commit.
func (s *BoltStore) AppendChunk(ctx context.Context, id string, events []byte) error {
	if err := checkChunk(events); err != nil {
		return fmt.Errorf("append to session %s: %w", id, err)
	}
	var plain [][]byte
	for rest := events; len(rest) > 0; {
		n := len(rest)
		if n > storedChunkBytes {
			if cut := bytes.LastIndexByte(rest[:storedChunkBytes], '\n'); cut >= 0 {
				n = cut + 1
			} else if cut := bytes.IndexByte(rest, '\n'); cut >= 0 {
				n = cut + 1
			}
		}
		plain = append(plain, rest[:n])
		rest = rest[n:]
	}
	chunks := make([]PreparedChunk, len(plain))
	errs := make([]error, len(plain))
	var wg sync.WaitGroup
	for i := 1; i < len(plain); i++ {
		wg.Go(func() { chunks[i], errs[i] = s.PrepareChunk(plain[i]) })
	}
	chunks[0], errs[0] = s.PrepareChunk(plain[0])
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("append to session %s: %w", id, err)
		}
	}
	return s.AppendPrepared(ctx, id, chunks)
}

// AppendPrepared stores chunks, in order, as the next chunks of an active
// session's recording, in one transaction that concurrent sessions share
// (one group commit, groupcommit.go).
func (s *BoltStore) AppendPrepared(ctx context.Context, id string, chunks []PreparedChunk) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("append to session %s: %w", id, err)
	}
	defer s.mu.RUnlock()
	if len(chunks) == 0 {
		return nil
	}
	size := 0
	for i, c := range chunks {
		if len(c.stored) == 0 {
			return fmt.Errorf("append to session %s: chunk %d of %d was not made by PrepareChunk", id, i+1, len(chunks))
		}
		size += len(c.stored)
	}
	a := &chunkAppend{id: id, chunks: chunks}
	if err := s.chunks.do(a, size, s.commitChunks); err != nil {
		return fmt.Errorf("append to session %s: %w", id, err)
	}
	if a.err == nil {
		// Committed: bbolt has copied the chunks into its pages.
		for i := range chunks {
			s.codec.release(chunks[i].stored)
			chunks[i].stored = nil
		}
	}
	return a.err
}

// chunkAppend is one AppendPrepared call in the group commit.
type chunkAppend struct {
	id     string
	chunks []PreparedChunk
	err    error // this call's own failure (its session is gone or ended)
}

// commitChunks stores the chunks of appends in one write transaction. An
// append whose session is missing or ended fails alone, before it writes
// anything; any other error is the store's and fails the commit.
func (s *BoltStore) commitChunks(appends []*chunkAppend) error {
	for _, a := range appends {
		a.err = nil // a rerun starts afresh
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, a := range appends {
			m, err := getMeta(tx, a.id)
			if err != nil {
				a.err = fmt.Errorf("append to %w", err)
				continue
			}
			if m.State != StateActive {
				a.err = fmt.Errorf("append to session %s (%s): %w", a.id, m.State, ErrEnded)
				continue
			}
			b, err := tx.Bucket(bucketEvents).CreateBucketIfNotExists([]byte(a.id))
			if err != nil {
				return fmt.Errorf("session %s: events bucket: %w", a.id, err)
			}
			for _, c := range a.chunks {
				seq, err := b.NextSequence()
				if err != nil {
					return fmt.Errorf("session %s: sequence: %w", a.id, err)
				}
				if err := b.Put(u64key(seq), c.stored); err != nil {
					return fmt.Errorf("session %s: chunk %d: %w", a.id, seq, err)
				}
				if info := c.info; info.Bytes >= 0 {
					info.Seq = seq
					if err := putChunkInfo(tx, a.id, info); err != nil {
						return fmt.Errorf("session %s: %w", a.id, err)
					}
				}
			}
		}
		return nil
	})
}

// UpdateSession replaces an existing row.
func (s *BoltStore) UpdateSession(ctx context.Context, meta SessionMeta) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("update session %s: %w", meta.ID, err)
	}
	defer s.mu.RUnlock()
	if err := validMeta(meta); err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		if _, err := getMeta(tx, meta.ID); err != nil {
			return fmt.Errorf("update %w", err)
		}
		return putMeta(tx, meta)
	})
}

// Session returns one row.
func (s *BoltStore) Session(ctx context.Context, id string) (SessionMeta, error) {
	if err := s.enter(ctx); err != nil {
		return SessionMeta{}, fmt.Errorf("session %s: %w", id, err)
	}
	defer s.mu.RUnlock()
	return s.session(id)
}

// session reads one row; the caller holds s.mu.
func (s *BoltStore) session(id string) (SessionMeta, error) {
	var m SessionMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = getMeta(tx, id)
		return err
	})
	return m, err
}

// ListSessions scans the rows (newest key first) and returns those passing
// f, sorted by start time, newest first.
func (s *BoltStore) ListSessions(ctx context.Context, f SessionFilter) ([]SessionMeta, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer s.mu.RUnlock()
	var out []SessionMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var m SessionMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("list sessions: decode row %s: %w", k, err)
			}
			if f.match(m) {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b SessionMeta) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// headerFor builds the asciicast header of a session. A session without a
// PTY has no size; players need one, so it gets the classic 80x24.
func headerFor(m SessionMeta) Header {
	h := Header{Version: 2, Width: m.Width, Height: m.Height, Timestamp: m.Start.Unix(), Title: m.Title}
	if h.Width <= 0 || h.Height <= 0 {
		h.Width, h.Height = 80, 24
	}
	if m.Term != "" {
		h.Env = map[string]string{"TERM": m.Term}
	}
	return h
}

// WriteRecording writes the asciicast v2 file of a session. It reads the
// chunks a page at a time so that a slow w never holds a transaction open.
func (s *BoltStore) WriteRecording(ctx context.Context, id string, w io.Writer) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("write recording %s: %w", id, err)
	}
	defer s.mu.RUnlock()
	m, err := s.session(id)
	if err != nil {
		return fmt.Errorf("write recording: %w", err)
	}
	if err := NewEncoder(w).WriteHeader(headerFor(m)); err != nil {
		return fmt.Errorf("write recording %s: %w", id, err)
	}
	var next uint64 = 1 // chunk sequences start at 1
	var plain []byte
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write recording %s: %w", id, err)
		}
		var page [][]byte
		var last uint64
		err := s.db.View(func(tx *bolt.Tx) error {
			ev := tx.Bucket(bucketEvents)
			if ev == nil {
				return nil
			}
			b := ev.Bucket([]byte(id))
			if b == nil {
				return nil
			}
			size := 0
			c := b.Cursor()
			for k, v := c.Seek(u64key(next)); k != nil && size < writePageBytes; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("chunk key %x is not a sequence number", k)
				}
				last = binary.BigEndian.Uint64(k)
				page = append(page, bytes.Clone(v)) // v is only valid inside the transaction
				size += len(v)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write recording %s: %w", id, err)
		}
		if len(page) == 0 {
			return nil
		}
		for i, z := range page {
			plain, err = s.codec.decode(z, plain[:0])
			if err != nil {
				return fmt.Errorf("write recording %s: chunk %d of page ending %d is damaged: %w", id, i, last, err)
			}
			// w is often a SHA-256 (the session's digest, audit verify):
			// legacy-SSE code, slowed tenfold by a dirty upper vector
			// state that the masker's AVX-512 code can leave (vecstate).
			vecstate.Clear()
			if _, err := w.Write(plain); err != nil {
				return fmt.Errorf("write recording %s: %w", id, err)
			}
		}
		next = last + 1
	}
}

// MarkInterrupted turns every active row into an interrupted one.
func (s *BoltStore) MarkInterrupted(ctx context.Context, now time.Time) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("mark interrupted sessions: %w", err)
	}
	defer s.mu.RUnlock()
	var ids []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		ids = ids[:0]
		b := tx.Bucket(bucketSessions)
		var rows []SessionMeta
		err := b.ForEach(func(k, v []byte) error {
			var m SessionMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode row %s: %w", k, err)
			}
			if m.State == StateActive {
				rows = append(rows, m)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range rows { // not inside ForEach: a bucket must not change while it is iterated
			m.State = StateInterrupted
			m.End = now
			if m.Error == "" {
				m.Error = "bastion stopped while the session was active; the recording ends at the last flush"
			}
			if err := putMeta(tx, m); err != nil {
				return err
			}
			ids = append(ids, m.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark interrupted sessions in %s: %w", s.path, err)
	}
	return ids, nil
}

// NextSerial returns the next value of the certs bucket's sequence, which
// bbolt persists with the data, so serials keep rising across restarts.
func (s *BoltStore) NextSerial(ctx context.Context) (uint64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, fmt.Errorf("next certificate serial: %w", err)
	}
	defer s.mu.RUnlock()
	var serial uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		serial, err = tx.Bucket(bucketCerts).NextSequence()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("next certificate serial in %s: %w", s.path, err)
	}
	return serial, nil
}

// RecordCert stores an issued certificate. A serial is recorded once; if it
// is above the sequence (a certificate issued by other means), the sequence
// moves past it so NextSerial never hands it out.
func (s *BoltStore) RecordCert(ctx context.Context, c CertRecord) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("record certificate %d: %w", c.Serial, err)
	}
	defer s.mu.RUnlock()
	if c.Serial == 0 {
		return errors.New("record certificate: serial 0 is not a valid serial")
	}
	if c.User == "" {
		return fmt.Errorf("record certificate %d: user is missing", c.Serial)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("record certificate %d: encode: %w", c.Serial, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCerts)
		k := u64key(c.Serial)
		if b.Get(k) != nil {
			return fmt.Errorf("record certificate %d: %w", c.Serial, ErrExists)
		}
		if c.Serial > b.Sequence() {
			if err := b.SetSequence(c.Serial); err != nil {
				return fmt.Errorf("record certificate %d: sequence: %w", c.Serial, err)
			}
		}
		if err := b.Put(k, v); err != nil {
			return fmt.Errorf("record certificate %d: %w", c.Serial, err)
		}
		return nil
	})
}

// userRevKey is user, a 0x00 separator, then the revocation time, so that
// all revocations of a user sit together under one prefix and every
// revocation is kept.
func userRevKey(user string, at time.Time) []byte {
	k := append([]byte(user), 0)
	return binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
}

// Revoke stores a revocation. Revoking a serial this store has not recorded
// is allowed: the certificate may predate the store.
func (s *BoltStore) Revoke(ctx context.Context, r Revocation) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer s.mu.RUnlock()
	if (r.Serial == 0) == (r.User == "") {
		return errors.New("revoke: set exactly one of serial and user")
	}
	if strings.IndexByte(r.User, 0) >= 0 {
		return fmt.Errorf("revoke user %q: user name contains a NUL byte", r.User)
	}
	if r.At.IsZero() || r.At.UnixNano() < 0 {
		return errors.New("revoke: the revocation time is missing")
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("revoke: encode: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		rev := tx.Bucket(bucketRevoked)
		if r.Serial != 0 {
			if err := rev.Bucket(bucketRevSer).Put(u64key(r.Serial), v); err != nil {
				return fmt.Errorf("revoke serial %d: %w", r.Serial, err)
			}
			return nil
		}
		if err := rev.Bucket(bucketRevUser).Put(userRevKey(r.User, r.At), v); err != nil {
			return fmt.Errorf("revoke user %s: %w", r.User, err)
		}
		return nil
	})
}

// IsRevoked reports whether the serial is revoked, or whether user has a
// revocation later than issuedAt.
func (s *BoltStore) IsRevoked(ctx context.Context, serial uint64, user string, issuedAt time.Time) (bool, error) {
	if err := s.enter(ctx); err != nil {
		return false, fmt.Errorf("check revocation: %w", err)
	}
	defer s.mu.RUnlock()
	var revoked bool
	err := s.db.View(func(tx *bolt.Tx) error {
		rev := tx.Bucket(bucketRevoked)
		if rev == nil {
			return nil
		}
		if b := rev.Bucket(bucketRevSer); b != nil && serial != 0 && b.Get(u64key(serial)) != nil {
			revoked = true
			return nil
		}
		b := rev.Bucket(bucketRevUser)
		if b == nil || user == "" {
			return nil
		}
		prefix := append([]byte(user), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var r Revocation
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode revocation of user %s: %w", user, err)
			}
			if issuedAt.Before(r.At) {
				revoked = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("check revocation in %s: %w", s.path, err)
	}
	return revoked, nil
}
