package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	list, err := ops.ListSessions(ctx, f)
	if err != nil {
		return err
	}
	if *grep != "" {
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

func runReplay(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "replay", "replay ID [--config F] [--speed X] [--idle-limit S]")
	cfgPath := fs.String("config", "", "configuration file")
	speed := fs.Float64("speed", 1, "playback speed factor (2 = twice as fast)")
	idle := fs.Duration("idle-limit", 0, "cap every pause at this (e.g. 2s); 0 keeps the original pauses")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one session ID (see `bastion sessions`)")
	}
	if *speed <= 0 {
		return usagef("--speed must be above 0")
	}
	ops, closeOps, err := openConfigOps(e, *cfgPath)
	if err != nil {
		return err
	}
	defer closeOps()
	if _, err := ops.Session(ctx, pos[0]); err != nil {
		return notFoundHint(err, pos[0])
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(ops.WriteRecording(ctx, pos[0], pw)) }()
	defer pr.Close()
	return recorder.Play(ctx, pr, e.stdout, recorder.PlayOptions{Speed: *speed, IdleLimit: *idle})
}

func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "export", "export ID [--config F] [-o FILE]")
	cfgPath := fs.String("config", "", "configuration file")
	out := fs.String("o", "", "write to FILE instead of standard output")
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
	if *out == "" {
		return ops.WriteRecording(ctx, pos[0], e.stdout)
	}
	// Write beside the destination and rename, so a failed export never
	// leaves a truncated file that looks like evidence.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".export-*.cast")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := ops.WriteRecording(ctx, pos[0], tmp); err != nil {
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
// is the point.
func grepSessions(ctx context.Context, ops admin.Ops, list []recorder.SessionMeta, text string, limit int) ([]recorder.SessionMeta, error) {
	var out []recorder.SessionMeta
	for _, m := range list {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(ops.WriteRecording(ctx, m.ID, pw)) }()
		found, err := outputContains(pr, text)
		_ = pr.Close()
		if err != nil {
			return nil, fmt.Errorf("search session %s: %w", m.ID, err)
		}
		if found {
			out = append(out, m)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
	}
	return out, nil
}

// outputContains reports whether the "o" events of an asciicast stream
// contain text, also across event boundaries.
func outputContains(r io.Reader, text string) (bool, error) {
	dec := recorder.NewDecoder(r)
	if _, err := dec.Header(); err != nil {
		return false, err
	}
	var tail string // the end of the previous event, for matches that span two
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if ev.Type != recorder.EventOutput {
			continue
		}
		hay := tail + ev.Data
		if strings.Contains(hay, text) {
			return true, nil
		}
		if k := len(text) - 1; k > 0 && len(hay) > k {
			tail = hay[len(hay)-k:]
		} else {
			tail = hay
		}
	}
}
