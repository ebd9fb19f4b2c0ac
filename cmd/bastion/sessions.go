package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

func runSessions(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sessions", "sessions [--config F] [--user U] [--target T] [--since T] [--until T] [--limit N] [--json]")
	cfgPath := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "only sessions of this user")
	target := fs.String("target", "", "only sessions that reached this target")
	since := fs.String("since", "", "only sessions started at or after T (RFC 3339, or a duration ago: 24h, 7d)")
	until := fs.String("until", "", "only sessions started before T (RFC 3339, or a duration ago)")
	limit := fs.Int("limit", 0, "at most N sessions (newest first)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	grep := fs.String("grep", "", "only sessions whose (masked) output contains TEXT")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	f := recorder.SessionFilter{User: *user, Target: *target, Limit: *limit}
	if *grep != "" {
		f.Limit = 0 // the limit applies to the matches
	}
	if f.Since, f.Until, err = parseRange(*since, *until, time.Now()); err != nil {
		return err
	}
	ops, closeOps, err := openConfigOps(e, *cfgPath)
	if err != nil {
		return err
	}
	defer closeOps()
	lctx, cancel := withTimeout(ctx)
	defer cancel()
	list, err := ops.ListSessions(lctx, f)
	if err != nil {
		return err
	}
	if err := auditRead(lctx, e, ops, "sessions", strings.Join(args, " ")); err != nil {
		return err
	}
	if *grep != "" {
		// Reading every recording takes as long as they are big (a
		// minute for tens of gigabytes): no deadline but the user's Ctrl-C.
		if list, err = grepSessions(ctx, ops, list, *grep, *limit); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, m := range list {
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	}
	return recorder.WriteSessionTable(e.stdout, list)
}

// parseRange reads the --since and --until flags of a listing.
func parseRange(since, until string, now time.Time) (from, to time.Time, err error) {
	if from, err = parseWhen(since, now); err != nil {
		return from, to, usagef("--since: %v", err)
	}
	if to, err = parseWhen(until, now); err != nil {
		return from, to, usagef("--until: %v", err)
	}
	return from, to, nil
}

// parseWhen reads a point in time: RFC 3339, or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := policy.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-12-01T09:00:00Z) nor a duration (24h, 7d)", s)
	}
	return now.Add(-d), nil
}

func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "export", "export ID [--config F] [-o FILE] [--standard]")
	cfgPath := fs.String("config", "", "configuration file")
	out := fs.String("o", "", "write to FILE instead of standard output")
	standard := fs.Bool("standard", false, "write binary output (\"b\" events) as standard \"o\" events, bytes that are not text as U+FFFD, "+
		"for players that know only o, i, m and r; the file then no longer matches the session's recording_sha256")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one session ID (see `bastion sessions`)")
	}
	ops, closeOps, err := openConfigOps(e, *cfgPath)
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if _, err := ops.Session(ctx, pos[0]); err != nil {
		return notFoundHint(err, pos[0])
	}
	if err := auditReadSession(ctx, e, ops, "export", pos[0], strings.Join(args, " ")); err != nil {
		return err
	}
	write := func(w io.Writer) error { return ops.WriteRecording(ctx, pos[0], w) }
	if *standard {
		write = func(w io.Writer) error { return writeStandard(ctx, ops, pos[0], w) }
	}
	if *out == "" {
		return write(e.stdout)
	}
	// Write beside the destination and rename, so a failed export never
	// leaves a truncated file that looks like evidence.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".export-*.cast")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// writeStandard writes the recording of session id to w as a standard
// asciicast v2 file (recorder.ExportStandard), converting it as it streams.
// A failure to read the recording reaches the conversion through the pipe.
func writeStandard(ctx context.Context, ops admin.Ops, id string, w io.Writer) error {
	pr, stop := streamRecording(ctx, ops, id)
	defer stop()
	if err := recorder.ExportStandard(w, pr); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	return nil
}

// auditReadSession records an on-host replay or export of one session's
// recording: the record's session field joins it to the session it read.
func auditReadSession(ctx context.Context, e *env, ops admin.Ops, what, id, args string) error {
	actx, cancel := withTimeout(ctx)
	defer cancel()
	if _, err := ops.AppendAudit(actx, recorder.AuditRecord{Type: "audit.read", Outcome: recorder.OutcomeSuccess,
		User: operator(e), Client: "local", Session: id,
		Detail: map[string]string{"what": what, "via": "host", "operator": operator(e), "args": args}}); err != nil {
		return fmt.Errorf("audit the %s of session %s (nothing was shown): %w", what, id, err)
	}
	return nil
}

func notFoundHint(err error, id string) error {
	if errors.Is(err, recorder.ErrNotFound) {
		return fmt.Errorf("no session %q; `bastion sessions` lists them", id)
	}
	return err
}

func runRevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "revoke", "revoke [--config F] (--user U | --serial N) [--reason TEXT]")
	cfgPath := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "revoke every certificate of this user issued until now")
	serial := fs.Uint64("serial", 0, "revoke the certificate with this serial")
	reason := fs.String("reason", "", "why, for the record")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || (*user == "") == (*serial == 0) {
		return usagef("want exactly one of --user U and --serial N")
	}
	ops, closeOps, err := openConfigOps(e, *cfgPath)
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	by := e.getenv("USER")
	if err := ops.Revoke(ctx, recorder.Revocation{Serial: *serial, User: *user, At: time.Now(), By: by, Reason: *reason}); err != nil {
		return err
	}
	if _, err := ops.AppendAudit(ctx, recorder.AuditRecord{Type: "cert.revoked", Outcome: recorder.OutcomeSuccess,
		User: *user, Serial: *serial, Reason: *reason, Detail: map[string]string{"operator": by}}); err != nil {
		return fmt.Errorf("revoked, but the audit record failed: %w", err)
	}
	if *user != "" {
		fmt.Fprintf(e.stdout, "revoked every certificate of %s issued until now\n", *user)
	} else {
		fmt.Fprintf(e.stdout, "revoked certificate serial %d\n", *serial)
	}
	return nil
}

func runCheckConfig(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "check-config", "check-config [--config F]")
	cfgPath := fs.String("config", "", "configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path := configPath(e, *cfgPath)
	if len(pos) == 1 {
		path = pos[0]
	}
	cfg, err := policy.Load(path)
	if err != nil {
		if list := policy.Errors(err); len(list) > 0 {
			for _, ce := range list {
				fmt.Fprintln(e.stderr, ce.Error())
			}
			return fmt.Errorf("%s: %d problem(s)", path, len(list))
		}
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d targets, %d roles, %d rules)\n", path, len(cfg.Targets), len(cfg.Roles), len(cfg.Rules))
	return nil
}

// runReload asks the running server to re-read its configuration; a file
// with errors is refused and the server keeps the policy it has.
func runReload(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "reload", "reload [--config F]")
	cfgPath := fs.String("config", "", "configuration file")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		return fmt.Errorf("%w\n(the running server keeps its policy)", err)
	}
	c, err := admin.Dial(filepath.Join(cfg.DataDir, admin.SocketName))
	if err != nil {
		return fmt.Errorf("no running bastion to reload: %w", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := c.Reload(ctx); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "policy reloaded")
	return nil
}

// grepSessions keeps the sessions whose recorded output contains text. The
// recordings are masked, so a search for a card number finds nothing: that
// is the point. Recordings are searched by a few workers at once (each
// reads one recording through ops), and the answer keeps list's order;
// with a limit, the search stops once the first limit sessions that match
// are known.
func grepSessions(ctx context.Context, ops admin.Ops, list []recorder.SessionMeta, text string, limit int) ([]recorder.SessionMeta, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		found bool
		err   error
		done  bool
	}
	results := make([]result, len(list))
	var mu sync.Mutex
	// enough reports whether the first sessions, all searched, already
	// hold limit matches.
	enough := func() bool {
		if limit <= 0 {
			return false
		}
		n := 0
		for _, r := range results {
			if !r.done {
				return false
			}
			if r.found {
				if n++; n >= limit {
					return true
				}
			}
		}
		return false
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4, max(len(list), 1)) {
		wg.Go(func() {
			for i := range jobs {
				found, err := recordingContains(ctx, ops, list[i].ID, text)
				mu.Lock()
				results[i] = result{found: found, err: err, done: true}
				if err != nil || enough() {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
dispatch:
	for i := range list {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(jobs)
	wg.Wait()
	var out []recorder.SessionMeta
	for i, r := range results {
		if limit > 0 && len(out) >= limit {
			break
		}
		if !r.done {
			// Only a cancelled search leaves one undone: the caller's
			// context, or an error reported below.
			if err := context.Cause(ctx); err != nil && !enough() {
				for _, r := range results {
					if r.err != nil {
						return nil, r.err
					}
				}
				return nil, fmt.Errorf("search session %s: %w", list[i].ID, err)
			}
			break
		}
		if r.err != nil {
			return nil, r.err
		}
		if r.found {
			out = append(out, list[i])
		}
	}
	return out, nil
}

// recordingContains streams one recording through outputContains.
func recordingContains(ctx context.Context, ops admin.Ops, id, text string) (bool, error) {
	pr, stop := streamRecording(ctx, ops, id) // stop ends the writer if the search stopped early
	defer stop()
	found, err := outputContains(pr, text)
	if err != nil {
		return false, fmt.Errorf("search session %s: %w", id, err)
	}
	return found, nil
}

// outputContains reports whether the output ("o" and "b") events of an
// asciicast stream contain text, also across event boundaries. Lines in
// the recorder's own shape ([time,"o","data"]) are read without
// encoding/json, which would cost most of the search: the data string is
// unescaped in place (JSON escapes only); anything else takes the full
// decoder, so the result is the same for any valid file.
func outputContains(r io.Reader, text string) (bool, error) {
	if text == "" {
		return true, nil
	}
	br := bufio.NewReaderSize(r, 256<<10)
	header, err := readLine(br, nil)
	if err != nil {
		return false, fmt.Errorf("line 1: %w", err)
	}
	if _, err := recorder.NewDecoder(bytes.NewReader(header)).Header(); err != nil {
		return false, err
	}
	needle := []byte(text)
	k := len(needle) - 1
	var (
		line, data []byte
		tail       []byte // the last k bytes of output so far
		edge       []byte
	)
	for n := 2; ; n++ {
		line, err = readLine(br, line[:0])
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ok bool
		data, ok = fastOutputData(line, data[:0])
		if !ok {
			var ev recorder.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				return false, fmt.Errorf("line %d: %w", n, err)
			}
			if !ev.IsOutput() {
				continue
			}
			data = append(data[:0], ev.Data...)
		} else if data == nil {
			continue // not an output event
		}
		if bytes.Contains(data, needle) {
			return true, nil
		}
		if k == 0 {
			continue
		}
		// A match that spans this event and the ones before.
		edge = append(append(edge[:0], tail...), data[:min(len(data), k)]...)
		if bytes.Contains(edge, needle) {
			return true, nil
		}
		if len(data) >= k {
			tail = append(tail[:0], data[len(data)-k:]...)
		} else {
			tail = append(tail, data...)
			tail = tail[max(0, len(tail)-k):]
		}
	}
}

// readLine appends the next line of br, without its line ending, to buf.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > recorder.MaxLineBytes {
			return nil, fmt.Errorf("longer than %d bytes; the recording is damaged", recorder.MaxLineBytes)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return bytes.TrimSuffix(buf, []byte("\r")), nil
		default:
			return nil, err
		}
	}
}

// fastOutputData reads a line the recorder wrote, [time,"TYPE","DATA"],
// and appends DATA, unescaped (or, for "b", decoded from base64), to buf
// for an output event; it returns nil
// (and true) for another event type, and false when the line is not in
// that exact shape (the caller then uses encoding/json).
func fastOutputData(line, buf []byte) ([]byte, bool) {
	if len(line) < 2 || line[0] != '[' || line[len(line)-1] != ']' {
		return nil, false
	}
	comma := bytes.IndexByte(line, ',')
	if comma < 0 {
		return nil, false
	}
	rest := line[comma+1 : len(line)-1]
	if b64, ok := bytes.CutPrefix(rest, []byte(`"b","`)); ok {
		// Binary output: base64 has no escapes, so the data ends at the
		// first quote, which must be the last byte.
		if len(b64) == 0 || bytes.IndexByte(b64, '"') != len(b64)-1 {
			return nil, false
		}
		out, err := base64.StdEncoding.AppendDecode(buf, b64[:len(b64)-1])
		if err != nil {
			return nil, false // encoding/json's path words the error
		}
		return out, true
	}
	if !bytes.HasPrefix(rest, []byte(`"o","`)) {
		if len(rest) > 0 && rest[0] == '"' && len(rest) > 2 {
			if end := bytes.IndexByte(rest[1:], '"'); end > 0 && bytes.IndexByte(rest[1:1+end], '\\') < 0 &&
				len(rest) > end+2 && rest[end+2] == ',' && string(rest[1:1+end]) != recorder.EventOutput {
				return nil, true // another event type, plainly spelt
			}
		}
		return nil, false
	}
	out, after, ok := recorder.AppendJSONString(buf, rest[len(`"o",`):])
	if !ok || len(after) != 0 {
		return nil, false
	}
	return out, true
}
