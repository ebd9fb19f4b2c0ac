package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"path/filepath"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// runAudit is `bastion audit [filters] [--json] [--follow]` and `bastion
// audit verify`.
func runAudit(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return runAuditVerify(ctx, e, args[1:])
	}
	fs := newFlags(e, "audit", "audit [--config F] [--user U] [--target T] [--type T] [--outcome success|failure] [--session ID] [--text TEXT] [--since T] [--until T] [--limit N] [--json] [--follow] | audit verify")
	cfgPath := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "only records about this user")
	target := fs.String("target", "", "only records about this target")
	typ := fs.String("type", "", "only this type (e.g. login.failure), or a family of types (approval)")
	outcome := fs.String("outcome", "", "only success or only failure")
	session := fs.String("session", "", "only records of this session")
	text := fs.String("text", "", "only records whose reason, command or statement contains TEXT (any case)")
	since := fs.String("since", "", "from T (RFC 3339, or a duration ago: 24h, 7d)")
	until := fs.String("until", "", "until T")
	limit := fs.Int("limit", 0, "at most N records (newest first); with --follow, the last N before following")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	follow := fs.Bool("follow", false, "keep printing records as they are appended, until interrupted")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *outcome != "" && *outcome != recorder.OutcomeSuccess && *outcome != recorder.OutcomeFailure {
		return usagef("--outcome: want success or failure, got %q", *outcome)
	}
	f := recorder.AuditFilter{User: *user, Target: *target, Type: *typ, Outcome: *outcome, Session: *session, Text: *text, Limit: *limit}
	if f.Since, f.Until, err = parseRange(*since, *until, time.Now()); err != nil {
		return err
	}
	if *follow && !f.Until.IsZero() {
		return usagef("--follow and --until do not go together: a followed trail has no end")
	}
	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		return err
	}
	out := newAuditWriter(e.stdout, *asJSON)
	if *follow {
		return followAudit(ctx, e, cfg, f, strings.Join(args, " "), out)
	}
	ops, closeOps, err := openOps(cfg)
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	list, err := ops.ListAudit(ctx, f)
	if err != nil {
		return err
	}
	if err := auditRead(ctx, e, ops, "audit", strings.Join(args, " ")); err != nil {
		return err
	}
	for _, r := range list {
		if err := out.write(r); err != nil {
			return err
		}
	}
	return out.flush()
}

// auditRead records an on-host read of the trail or of recordings (PCI DSS
// 10.2.1.3: every access to audit trails, by whom). The operator is the OS
// user running the command.
func auditRead(ctx context.Context, e *env, ops admin.Ops, what, args string) error {
	if _, err := ops.AppendAudit(ctx, recorder.AuditRecord{Type: "audit.read", Outcome: recorder.OutcomeSuccess,
		User: operator(e), Client: "local", Detail: map[string]string{"what": what, "via": "host", "operator": operator(e), "args": args}}); err != nil {
		return fmt.Errorf("audit the %s read (nothing was shown): %w", what, err)
	}
	return nil
}

// operator names the OS user running an on-host command, for the trail.
func operator(e *env) string {
	if u := e.getenv("USER"); u != "" {
		return u
	}
	if u, err := osuser.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// auditWriter prints records as JSON lines or as a table.
type auditWriter struct {
	w      io.Writer
	json   *json.Encoder
	header bool
}

func newAuditWriter(w io.Writer, asJSON bool) *auditWriter {
	a := &auditWriter{w: w}
	if asJSON {
		a.json = json.NewEncoder(w)
	}
	return a
}

// auditRowFormat has fixed widths (no tabwriter), so that a followed
// trail prints each row the moment it arrives.
const auditRowFormat = "%-6s  %-23s  %-18s  %-7s  %-12s  %-12s  %-13s  %s\n"

func (a *auditWriter) write(r recorder.AuditRecord) error {
	if a.json != nil {
		return a.json.Encode(r)
	}
	if !a.header {
		a.header = true
		if _, err := fmt.Fprintf(a.w, auditRowFormat, "SEQ", "TIME", "TYPE", "OUTCOME", "USER", "TARGET", "SESSION", "REASON"); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(a.w, auditRowFormat, fmt.Sprint(r.Seq), r.Time.Local().Format("2006-01-02 15:04:05.000"),
		r.Type, r.Outcome, dash(r.User), dash(r.Target), dash(r.Session), r.Reason)
	return err
}

// flush prints the header of an empty table, so that no output still says
// what was looked for.
func (a *auditWriter) flush() error {
	if a.json == nil && !a.header {
		a.header = true
		_, err := fmt.Fprintf(a.w, auditRowFormat, "SEQ", "TIME", "TYPE", "OUTCOME", "USER", "TARGET", "SESSION", "REASON")
		return err
	}
	return nil
}

// followPoll is how often a follower of a stopped server's store looks
// for a server that started, or for records written by on-host commands.
const followPoll = time.Second

// followAudit prints the records that pass f as they are appended, until
// ctx ends (SIGINT). While a server runs it streams them from the admin
// socket; otherwise it polls the store file, opened read-only for a moment
// each time so that a server can start meanwhile, and it switches between
// the two as the server starts and stops. With --since or --limit, the
// matching records before now come first.
func followAudit(ctx context.Context, e *env, cfg *policy.Config, f recorder.AuditFilter, args string, out *auditWriter) error {
	ops, closeOps, err := openOps(cfg)
	if err != nil {
		return err
	}
	actx, cancel := withTimeout(ctx)
	err = auditRead(actx, e, ops, "audit --follow", args)
	var backlog, head []recorder.AuditRecord
	if err == nil {
		head, err = ops.ListAudit(actx, recorder.AuditFilter{Limit: 1})
	}
	if err == nil && (f.Limit > 0 || !f.Since.IsZero()) {
		backlog, err = ops.ListAudit(actx, f)
	}
	cancel()
	closeOps() // a stopped store must not stay locked while we follow
	if err != nil {
		return err
	}
	f.Limit = 0
	if len(head) > 0 {
		f.After = head[0].Seq
	}
	// The backlog was read after the head: what came in between is
	// followed below, so it must not print twice.
	for i := len(backlog) - 1; i >= 0; i-- {
		if backlog[i].Seq > f.After {
			continue
		}
		if err := out.write(backlog[i]); err != nil {
			return err
		}
	}
	emit := func(r recorder.AuditRecord) error {
		f.After = max(f.After, r.Seq)
		if err := out.write(r); err != nil {
			return fmt.Errorf("%w: %w", errWrite, err)
		}
		return nil
	}
	sock := filepath.Join(cfg.DataDir, admin.SocketName)
	path := filepath.Join(cfg.DataDir, storeFile)
	for {
		if c, err := admin.Dial(sock); err == nil {
			err := c.FollowAudit(ctx, f, emit)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errWrite) {
				return err
			}
			if !errors.Is(err, io.EOF) {
				e.log.Warn("audit follow: the server's stream failed; retrying", "err", err)
			}
		} else if err := pollStore(ctx, path, &f, emit); err != nil && ctx.Err() == nil {
			if errors.Is(err, errWrite) {
				return err
			}
			e.log.Debug("audit follow: store not readable now; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
	}
}

// errWrite marks a failure to print, which ends a follow (a closed pipe).
var errWrite = errors.New("write")

// pollStore prints what a stopped server's store holds after f.After.
func pollStore(ctx context.Context, path string, f *recorder.AuditFilter, emit func(recorder.AuditRecord) error) error {
	st, err := recorder.OpenBolt(path, recorder.BoltOptions{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	list, err := st.ListAudit(ctx, *f)
	head, herr := st.ListAudit(ctx, recorder.AuditFilter{Limit: 1})
	if cerr := st.Close(); err == nil {
		err = errors.Join(herr, cerr)
	}
	if err != nil {
		return err
	}
	for i := len(list) - 1; i >= 0; i-- {
		if err := emit(list[i]); err != nil {
			return err
		}
	}
	if len(head) > 0 {
		f.After = max(f.After, head[0].Seq)
	}
	return nil
}

func runAuditVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "audit verify", "audit verify [--config F]")
	cfgPath := fs.String("config", "", "configuration file")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	ops, closeOps, err := openConfigOps(e, *cfgPath)
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	n, err := ops.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	// The audit key's public half is enough to check the signed heads.
	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		return err
	}
	pubPath := filepath.Join(cfg.DataDir, auditKeyFile+".pub")
	raw, err := os.ReadFile(pubPath)
	if err != nil {
		return fmt.Errorf("read the audit key %s: %w", pubPath, err)
	}
	key, _, _, _, err := gossh.ParseAuthorizedKey(raw)
	if err != nil {
		return fmt.Errorf("parse the audit key %s: %w", pubPath, err)
	}
	all, err := ops.ListAudit(ctx, recorder.AuditFilter{})
	if err != nil {
		return err
	}
	signed, err := bastion.VerifyCheckpoints(all, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "audit trail ok: %d records, hash chain intact, every recording matches its digest, %d signed checkpoints (key %s)\n",
		n, signed, gossh.FingerprintSHA256(key))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runPrune removes what recording.retention allows to go, and only that:
// the cutoff comes from the configuration (at least 365 days, which policy
// enforces at load), never from a flag.
func runPrune(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "prune", "prune [--config F]")
	cfgPath := fs.String("config", "", "configuration file")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		return err
	}
	ops, closeOps, err := openOps(cfg)
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	retention := time.Duration(cfg.Recording.Retention)
	ids, err := ops.Prune(ctx, time.Now().Add(-retention))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pruned %d session(s) that ended more than %s ago\n", len(ids), cfg.Recording.Retention)
	return nil
}
