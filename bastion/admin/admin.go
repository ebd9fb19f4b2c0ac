// Package admin is the on-host control socket of a running bastion. bbolt
// holds an exclusive lock on the store, so while `bastion serve` runs the
// on-host commands (sessions, replay, export, revoke, keys sign) reach the
// store through this socket: HTTP over a Unix socket of mode 0600 inside
// data_dir, so only the bastion's own OS user can use it.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/bastion-dev/bastion/recorder"
)

// SocketName is the socket's file name inside data_dir.
const SocketName = "admin.sock"

// Ops is what the on-host commands need of the store. recorder.Store has
// it, and so does Client, so a command works the same against a running
// server and a stopped server's store file.
type Ops interface {
	ListSessions(ctx context.Context, f recorder.SessionFilter) ([]recorder.SessionMeta, error)
	Session(ctx context.Context, id string) (recorder.SessionMeta, error)
	WriteRecording(ctx context.Context, id string, w io.Writer) error
	NextSerial(ctx context.Context) (uint64, error)
	RecordCert(ctx context.Context, c recorder.CertRecord) error
	Revoke(ctx context.Context, r recorder.Revocation) error
	AppendAudit(ctx context.Context, r recorder.AuditRecord) (recorder.AuditRecord, error)
	ListAudit(ctx context.Context, f recorder.AuditFilter) ([]recorder.AuditRecord, error)
	VerifyAudit(ctx context.Context) (int, error)
	Prune(ctx context.Context, cutoff time.Time) ([]string, error)
}

// AuditSource tells of every audit record as it is appended
// (recorder.BoltStore has it); the follow endpoint needs it to wake up.
type AuditSource interface {
	OnAudit(fn func(recorder.AuditRecord)) (stop func())
}

// Hooks let the running server act on what the socket is told.
type Hooks struct {
	// OnRevoke is told of each revocation, so the server can end the
	// connections that are already open.
	OnRevoke func(r recorder.Revocation)
	// Reload re-reads the configuration and puts it in force, or says why
	// not (the old policy then stays).
	Reload func() error
}

// Handler serves Ops over HTTP.
func Handler(ops Ops, log *slog.Logger, hooks Hooks) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		f, err := filterFromQuery(r.URL.Query())
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		list, err := ops.ListSessions(r.Context(), f)
		writeJSON(w, list, err)
	})
	mux.HandleFunc("GET /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		m, err := ops.Session(r.Context(), r.PathValue("id"))
		writeJSON(w, m, err)
	})
	mux.HandleFunc("GET /v1/sessions/{id}/recording", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := ops.Session(r.Context(), id); err != nil {
			writeJSON(w, nil, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-asciicast")
		if err := ops.WriteRecording(r.Context(), id, w); err != nil {
			// Headers are gone; the client sees a truncated body and the
			// trailer-less close. Log it for the operator.
			log.Error("admin: write recording", "session", id, "err", err)
		}
	})
	// Chunk access, for a player that seeks: the first frame and a seek
	// then read a chunk or two, not the whole recording.
	if cr, ok := ops.(recorder.ChunkReader); ok {
		mux.HandleFunc("GET /v1/sessions/{id}/chunks", func(w http.ResponseWriter, r *http.Request) {
			idx, err := cr.ChunkIndex(r.Context(), r.PathValue("id"))
			writeJSON(w, idx, err)
		})
		mux.HandleFunc("GET /v1/sessions/{id}/chunks/{seq}", func(w http.ResponseWriter, r *http.Request) {
			seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
			if err != nil {
				httpError(w, http.StatusBadRequest, fmt.Errorf("chunk number %q: %w", r.PathValue("seq"), err))
				return
			}
			b, err := cr.ReadChunk(r.Context(), r.PathValue("id"), seq)
			if err != nil {
				writeJSON(w, nil, err)
				return
			}
			w.Header().Set("Content-Type", "application/x-asciicast-lines")
			_, _ = w.Write(b)
		})
	}
	mux.HandleFunc("POST /v1/serials", func(w http.ResponseWriter, r *http.Request) {
		n, err := ops.NextSerial(r.Context())
		writeJSON(w, n, err)
	})
	mux.HandleFunc("POST /v1/certs", func(w http.ResponseWriter, r *http.Request) {
		var c recorder.CertRecord
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("decode certificate record: %w", err))
			return
		}
		writeJSON(w, struct{}{}, ops.RecordCert(r.Context(), c))
	})
	mux.HandleFunc("POST /v1/revocations", func(w http.ResponseWriter, r *http.Request) {
		var rv recorder.Revocation
		if err := json.NewDecoder(r.Body).Decode(&rv); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("decode revocation: %w", err))
			return
		}
		err := ops.Revoke(r.Context(), rv)
		if err == nil && hooks.OnRevoke != nil {
			hooks.OnRevoke(rv)
		}
		writeJSON(w, struct{}{}, err)
	})
	mux.HandleFunc("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) {
		f, err := auditFilterFromQuery(r.URL.Query())
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		list, err := ops.ListAudit(r.Context(), f)
		writeJSON(w, list, err)
	})
	mux.HandleFunc("GET /v1/audit/follow", func(w http.ResponseWriter, r *http.Request) {
		f, err := auditFilterFromQuery(r.URL.Query())
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		src, ok := ops.(AuditSource)
		if !ok {
			httpError(w, http.StatusNotImplemented, errors.New("this server cannot stream the audit trail"))
			return
		}
		if err := followAudit(r.Context(), w, ops, src, f); err != nil && r.Context().Err() == nil {
			log.Warn("admin: audit follow ended", "err", err)
		}
	})
	mux.HandleFunc("POST /v1/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		n, err := ops.VerifyAudit(r.Context())
		writeJSON(w, n, err)
	})
	mux.HandleFunc("POST /v1/prune", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Cutoff time.Time `json:"cutoff"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Cutoff.IsZero() {
			httpError(w, http.StatusBadRequest, fmt.Errorf("prune: want {\"cutoff\": time}: %v", err))
			return
		}
		ids, err := ops.Prune(r.Context(), req.Cutoff)
		writeJSON(w, ids, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		if hooks.Reload == nil {
			httpError(w, http.StatusNotImplemented, errors.New("this server cannot reload"))
			return
		}
		writeJSON(w, struct{}{}, hooks.Reload())
	})
	mux.HandleFunc("POST /v1/audit", func(w http.ResponseWriter, r *http.Request) {
		var rec recorder.AuditRecord
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("decode audit record: %w", err))
			return
		}
		stored, err := ops.AppendAudit(r.Context(), rec)
		writeJSON(w, stored, err)
	})
	return mux
}

// Listen creates the socket at path with mode 0600. A stale socket file
// from a crashed server is removed; a live one means another server runs.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("admin socket %s is in use: is another bastion running on this data_dir?", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("admin socket %s: chmod: %w", path, err)
	}
	return ln, nil
}

// Serve runs the admin HTTP server on ln until ctx is done. Requests run
// under ctx, so long-running ones (audit follow) end when it does.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// errorBody is the JSON of a failed call.
type errorBody struct {
	Error    string `json:"error"`
	NotFound bool   `json:"not_found,omitempty"`
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, recorder.ErrNotFound) {
			status = http.StatusNotFound
		}
		httpError(w, status, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: err.Error(), NotFound: status == http.StatusNotFound})
}

func filterFromQuery(q url.Values) (recorder.SessionFilter, error) {
	f := recorder.SessionFilter{User: q.Get("user"), Target: q.Get("target")}
	for _, p := range []struct {
		key string
		dst *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, fmt.Errorf("%s: %w", p.key, err)
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, fmt.Errorf("limit %q: want a non-negative number", v)
		}
		f.Limit = n
	}
	return f, nil
}

// Client talks to a running server's admin socket.
type Client struct {
	http *http.Client
}

// Dial returns a client for the socket at path if a server answers there,
// and an error wrapping os.ErrNotExist when none runs.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, fmt.Errorf("no bastion answers on %s: %w", path, errors.Join(os.ErrNotExist, err))
	}
	_ = c.Close()
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://bastion"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var eb errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&eb); err != nil {
		return fmt.Errorf("admin socket: HTTP %d", resp.StatusCode)
	}
	if eb.NotFound {
		return fmt.Errorf("%s: %w", eb.Error, recorder.ErrNotFound)
	}
	return errors.New(eb.Error)
}

// ListSessions implements Ops.
func (c *Client) ListSessions(ctx context.Context, f recorder.SessionFilter) ([]recorder.SessionMeta, error) {
	q := url.Values{}
	if f.User != "" {
		q.Set("user", f.User)
	}
	if f.Target != "" {
		q.Set("target", f.Target)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []recorder.SessionMeta
	err := c.do(ctx, http.MethodGet, "/v1/sessions?"+q.Encode(), nil, &out)
	return out, err
}

// Session implements Ops.
func (c *Client) Session(ctx context.Context, id string) (recorder.SessionMeta, error) {
	var m recorder.SessionMeta
	err := c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &m)
	return m, err
}

// WriteRecording implements Ops.
func (c *Client) WriteRecording(ctx context.Context, id string, w io.Writer) error {
	return c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id)+"/recording", nil, w)
}

// ChunkIndex implements recorder.ChunkReader through the running
// server's store.
func (c *Client) ChunkIndex(ctx context.Context, id string) ([]recorder.ChunkInfo, error) {
	var idx []recorder.ChunkInfo
	err := c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id)+"/chunks", nil, &idx)
	return idx, err
}

// ReadChunk implements recorder.ChunkReader through the running server's
// store.
func (c *Client) ReadChunk(ctx context.Context, id string, seq uint64) ([]byte, error) {
	var b bytes.Buffer
	err := c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id)+"/chunks/"+strconv.FormatUint(seq, 10), nil, &b)
	return b.Bytes(), err
}

var _ recorder.ChunkReader = (*Client)(nil)

// NextSerial implements Ops.
func (c *Client) NextSerial(ctx context.Context) (uint64, error) {
	var n uint64
	err := c.do(ctx, http.MethodPost, "/v1/serials", struct{}{}, &n)
	return n, err
}

// RecordCert implements Ops.
func (c *Client) RecordCert(ctx context.Context, rec recorder.CertRecord) error {
	return c.do(ctx, http.MethodPost, "/v1/certs", rec, nil)
}

// Revoke implements Ops.
func (c *Client) Revoke(ctx context.Context, r recorder.Revocation) error {
	return c.do(ctx, http.MethodPost, "/v1/revocations", r, nil)
}

// AppendAudit implements Ops.
func (c *Client) AppendAudit(ctx context.Context, r recorder.AuditRecord) (recorder.AuditRecord, error) {
	var out recorder.AuditRecord
	err := c.do(ctx, http.MethodPost, "/v1/audit", r, &out)
	return out, err
}

// ListAudit implements Ops.
func (c *Client) ListAudit(ctx context.Context, f recorder.AuditFilter) ([]recorder.AuditRecord, error) {
	var out []recorder.AuditRecord
	err := c.do(ctx, http.MethodGet, "/v1/audit?"+auditQuery(f).Encode(), nil, &out)
	return out, err
}

// FollowAudit streams the records that pass f and come after f.After,
// oldest first, calling fn with each, until ctx ends (it then returns nil),
// the server stops (it returns io.EOF), or fn fails.
func (c *Client) FollowAudit(ctx context.Context, f recorder.AuditFilter, fn func(recorder.AuditRecord) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://bastion/v1/audit/follow?"+auditQuery(f).Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var r recorder.AuditRecord
		if err := dec.Decode(&r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			return fmt.Errorf("admin socket: audit stream: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// VerifyAudit implements Ops.
func (c *Client) VerifyAudit(ctx context.Context) (int, error) {
	var n int
	err := c.do(ctx, http.MethodPost, "/v1/audit/verify", struct{}{}, &n)
	return n, err
}

// Reload asks the running server to re-read its configuration.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reload", struct{}{}, nil)
}

// Prune implements Ops.
func (c *Client) Prune(ctx context.Context, cutoff time.Time) ([]string, error) {
	var ids []string
	err := c.do(ctx, http.MethodPost, "/v1/prune", struct {
		Cutoff time.Time `json:"cutoff"`
	}{cutoff}, &ids)
	return ids, err
}

// auditQuery is the query string of an audit filter; auditFilterFromQuery
// reads it back.
func auditQuery(f recorder.AuditFilter) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"user": f.User, "type": f.Type, "session": f.Session,
		"target": f.Target, "outcome": f.Outcome, "text": f.Text} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatUint(f.After, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

func auditFilterFromQuery(q url.Values) (recorder.AuditFilter, error) {
	f := recorder.AuditFilter{User: q.Get("user"), Type: q.Get("type"), Session: q.Get("session"),
		Target: q.Get("target"), Outcome: q.Get("outcome"), Text: q.Get("text")}
	sf, err := filterFromQuery(q)
	if err != nil {
		return f, err
	}
	f.Since, f.Until, f.Limit = sf.Since, sf.Until, sf.Limit
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return f, fmt.Errorf("after %q: want a record sequence number", v)
		}
		f.After = n
	}
	return f, nil
}

// followAudit writes the records that pass f after f.After as JSON lines,
// oldest first, flushing after each batch, and then every new one as it is
// appended, until ctx ends. It never holds a read transaction while
// writing to a slow client: each batch is read, then written.
func followAudit(ctx context.Context, w http.ResponseWriter, ops Ops, src AuditSource, f recorder.AuditFilter) error {
	wake := make(chan struct{}, 1)
	stop := src.OnAudit(func(recorder.AuditRecord) {
		select {
		case wake <- struct{}{}:
		default: // a wake-up is already pending; it reads everything new
		}
	})
	defer stop()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	f.Limit = 0
	// Each batch is read to its end even when ctx has just ended (the
	// server stopping after its last records, which must still go out);
	// a client that went away fails the writes instead.
	drain := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		head, err := ops.ListAudit(ctx, recorder.AuditFilter{Limit: 1})
		if err != nil {
			return err
		}
		batch, err := ops.ListAudit(ctx, f)
		if err != nil {
			return err
		}
		for i := len(batch) - 1; i >= 0; i-- {
			if err := enc.Encode(batch[i]); err != nil {
				return err
			}
			f.After = max(f.After, batch[i].Seq)
		}
		// Records that did not pass f need not be looked at again.
		if len(head) > 0 {
			f.After = max(f.After, head[0].Seq)
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	if err := drain(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-wake:
			if err := drain(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			// The server is stopping: what it appended last (server.stop,
			// the final checkpoint) still goes out.
			return drain(ctx)
		}
	}
}
