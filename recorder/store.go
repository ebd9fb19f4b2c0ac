package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// State is where a session is in its life.
type State string

// Session states. A session is active until its recorder closes it; one that
// was active when the server stopped is marked interrupted at the next start.
const (
	StateActive      State = "active"
	StateClosed      State = "closed"
	StateInterrupted State = "interrupted"
)

// valid reports whether s is one of the known states.
func (s State) valid() bool {
	return s == StateActive || s == StateClosed || s == StateInterrupted
}

// SessionMeta is a session row: who reached which target, when, and how it
// ended. The JSON names are the stored and exported form; keep them stable.
type SessionMeta struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Serial     uint64    `json:"serial"` // certificate serial the user authenticated with
	ClientAddr string    `json:"client"`
	Target     string    `json:"target"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end,omitzero"` // zero while active
	State      State     `json:"state"`
	ExitStatus *int      `json:"exit,omitempty"` // nil while active or when unknown
	BytesOut   int64     `json:"bytes_out"`
	BytesIn    int64     `json:"bytes_in"`
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	Term       string    `json:"term,omitempty"`
	Title      string    `json:"title,omitempty"`
	Error      string    `json:"error,omitempty"` // why it ended abnormally, if it did
	// Masked counts the values masked in the session's output, by detector
	// or rule name: what an auditor asks ("did any response hold card
	// data?").
	Masked map[string]int64 `json:"masked,omitempty"`
}

// SessionFilter selects sessions. Zero fields do not filter. Since and Until
// bound the start time: Since inclusive, Until exclusive. Limit caps the
// number of results, which are newest first.
type SessionFilter struct {
	User   string
	Target string
	Since  time.Time
	Until  time.Time
	Limit  int
}

// match reports whether m passes the filter (Limit aside).
func (f SessionFilter) match(m SessionMeta) bool {
	switch {
	case f.User != "" && m.User != f.User:
		return false
	case f.Target != "" && !slices.Contains(strings.Split(m.Target, ","), f.Target):
		return false
	case !f.Since.IsZero() && m.Start.Before(f.Since):
		return false
	case !f.Until.IsZero() && !m.Start.Before(f.Until):
		return false
	}
	return true
}

// CertRecord is an issued user certificate, kept so that an auditor can see
// who was given access with which key, and so revocation has something to
// point at.
type CertRecord struct {
	Serial         uint64    `json:"serial"`
	User           string    `json:"user"`
	Groups         []string  `json:"groups,omitempty"`
	KeyFingerprint string    `json:"key_fingerprint"`
	IssuedAt       time.Time `json:"issued_at"`
	ValidBefore    time.Time `json:"valid_before"`
	IssuedBy       string    `json:"issued_by,omitempty"` // "oidc", "keys sign", an admin's name
}

// Revocation withdraws certificates before they expire. Exactly one of Serial
// and User is set: a serial revokes that certificate; a user revokes every
// certificate of that user issued before At (so a fresh login afterwards
// works again, which is what "log this person out everywhere" needs).
type Revocation struct {
	Serial uint64    `json:"serial,omitempty"`
	User   string    `json:"user,omitempty"`
	At     time.Time `json:"at"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Errors of the store, to be tested with errors.Is; they are always wrapped
// with the id or path concerned.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrEnded refuses appends to a session that is closed or interrupted:
	// a finished recording is evidence and does not change.
	ErrEnded = errors.New("session has ended; its recording can no longer change")
	// ErrLocked means another process (normally the running server) holds
	// the store file.
	ErrLocked = errors.New("timed out waiting for the store file lock")
)

// Store is the recording store: session rows, their recordings, issued
// certificates and revocations. BoltStore implements it; a cluster backend
// will come later, and the admin-socket client implements the read side, so
// it deals in plain data only.
type Store interface {
	// CreateSession adds a session row; it refuses an id already present.
	CreateSession(ctx context.Context, meta SessionMeta) error
	// AppendChunk appends complete asciicast event lines ("[...]\n" each)
	// to the recording of an active session. It does not keep events
	// after it returns: the recorder reuses the buffer.
	AppendChunk(ctx context.Context, id string, events []byte) error
	// PrepareChunk turns complete event lines into one chunk in stored
	// form (checked, compressed, indexed) without writing anything: the
	// costly half of an append, which may run concurrently with any call
	// and does not keep events.
	PrepareChunk(events []byte) (PreparedChunk, error)
	// PrepareEncoded is PrepareChunk for event lines the recorder's
	// encoder wrote, which are valid UTF-8 by construction: it skips
	// that check. escapes is whether the output in events held an ESC
	// byte: without one no line can clear the screen, and the index
	// skips its search for keyframes.
	PrepareEncoded(events []byte, escapes bool) (PreparedChunk, error)
	// AppendPrepared appends prepared chunks, in order, to the recording
	// of an active session in one commit. Once it succeeds the chunks are
	// spent (their buffers are reused): they cannot be appended again.
	AppendPrepared(ctx context.Context, id string, chunks []PreparedChunk) error
	// UpdateSession replaces an existing session row.
	UpdateSession(ctx context.Context, meta SessionMeta) error
	// Session returns one row, or an error wrapping ErrNotFound.
	Session(ctx context.Context, id string) (SessionMeta, error)
	// ListSessions returns the rows that pass f, newest first.
	ListSessions(ctx context.Context, f SessionFilter) ([]SessionMeta, error)
	// WriteRecording writes the whole asciicast v2 file of a session: a
	// header built from the row, then every stored event line in order.
	WriteRecording(ctx context.Context, id string, w io.Writer) error
	// MarkInterrupted turns every active row into an interrupted one
	// ending at now and returns their ids. The server calls it at start,
	// when no session can be active any more.
	MarkInterrupted(ctx context.Context, now time.Time) ([]string, error)
	// NextSerial returns the next certificate serial; the first is 1 and
	// a serial is never handed out twice.
	NextSerial(ctx context.Context) (uint64, error)
	// RecordCert stores an issued certificate under its serial.
	RecordCert(ctx context.Context, c CertRecord) error
	// Revoke stores a revocation by serial or by user.
	Revoke(ctx context.Context, r Revocation) error
	// IsRevoked reports whether the certificate with this serial, issued to
	// user at issuedAt, has been revoked.
	IsRevoked(ctx context.Context, serial uint64, user string, issuedAt time.Time) (bool, error)
	// AppendAudit adds a record to the hash-chained audit trail and
	// returns it as stored (Seq, Prev, Hash filled in).
	AppendAudit(ctx context.Context, r AuditRecord) (AuditRecord, error)
	// AppendAudits adds several records in order, in one commit: what a
	// session start writes (session, recording) costs one disk sync.
	AppendAudits(ctx context.Context, rs []AuditRecord) ([]AuditRecord, error)
	// ListAudit returns the audit records that pass f, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	// VerifyAudit checks the hash chain and returns the records checked.
	VerifyAudit(ctx context.Context) (int, error)
	// PutApproval stores an approval request (a zero ID gets the next one).
	PutApproval(ctx context.Context, r ApprovalRecord) (ApprovalRecord, error)
	// Approval returns one approval request.
	Approval(ctx context.Context, id uint64) (ApprovalRecord, error)
	// ListApprovals returns every approval request, newest first.
	ListApprovals(ctx context.Context) ([]ApprovalRecord, error)
	// Prune removes sessions that ended before cutoff, recording each
	// removal in the audit trail first, and returns their ids.
	Prune(ctx context.Context, cutoff time.Time) ([]string, error)
	// Close releases the store.
	Close() error
}

// crockford is Crockford's base32 alphabet in lower case: no i, l, o or u, so
// an id read aloud or retyped from a ticket survives.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// sessionIDLen is the length of ids from NewSessionID: 48 bits of
// milliseconds and 15 random bits, in 13 base32 characters.
const sessionIDLen = 13

// NewSessionID returns a short, easy-to-type id whose lexical order is time
// order (so the store's key order is the start order): the milliseconds of
// now in the first ten characters, then three random ones from rnd. Same-
// millisecond ids collide with probability 1/32768; CreateSession refuses a
// duplicate, so a caller retries rather than overwrites.
func NewSessionID(now time.Time, rnd io.Reader) (string, error) {
	ms := now.UnixMilli()
	if ms < 0 || ms >= 1<<48 {
		return "", fmt.Errorf("session id: time %s is outside 1970..10889", now.UTC().Format(time.RFC3339))
	}
	var rb [2]byte
	if _, err := io.ReadFull(rnd, rb[:]); err != nil {
		return "", fmt.Errorf("session id: read random bits: %w", err)
	}
	v := uint64(ms)<<15 | uint64(rb[0]&0x7f)<<8 | uint64(rb[1])
	var id [sessionIDLen]byte
	for i := sessionIDLen - 1; i >= 0; i-- {
		id[i] = crockford[v&31]
		v >>= 5
	}
	return string(id[:]), nil
}

// CheckSessionID reports whether id is acceptable as a session id: 1 to 64
// characters of letters, digits, '-', '_' and '.', not starting with '.'.
// Ids end up in file names and command lines, so nothing else is allowed.
func CheckSessionID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("session id %q: must be 1 to 64 characters", id)
	}
	if id[0] == '.' {
		return fmt.Errorf("session id %q: must not start with '.'", id)
	}
	for i := range len(id) {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("session id %q: character %q not allowed; use letters, digits, '-', '_' or '.'", id, c)
		}
	}
	return nil
}
