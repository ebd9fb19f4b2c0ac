package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/recorder"
)

// runAudit is `bastion audit [filters] [--json]` and `bastion audit verify`.
func runAudit(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return runAuditVerify(ctx, e, args[1:])
	}
	fs := newFlags(e, "audit", "audit [--config F] [--user U] [--type T] [--session ID] [--since T] [--until T] [--limit N] [--json] | audit verify")
	cfgPath := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "only records about this user")
	typ := fs.String("type", "", "only this type (e.g. login.failure), or a prefix ending in a dot or without one (approval)")
	session := fs.String("session", "", "only records of this session")
	since := fs.String("since", "", "from T (RFC 3339, or a duration ago: 24h, 7d)")
	until := fs.String("until", "", "until T")
	limit := fs.Int("limit", 0, "at most N records (newest first)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	f := recorder.AuditFilter{User: *user, Session: *session}
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
	list, err := ops.ListAudit(ctx, f)
	if err != nil {
		return err
	}
	// Reading the trail is itself audited (PCI DSS 10.2.1.3).
	if _, err := ops.AppendAudit(ctx, recorder.AuditRecord{Type: "audit.read", Outcome: recorder.OutcomeSuccess,
		Detail: map[string]string{"operator": e.getenv("USER"), "filter": strings.Join(args, " ")}}); err != nil {
		return fmt.Errorf("audit the audit read: %w", err)
	}
	shown := 0
	enc := json.NewEncoder(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tOUTCOME\tUSER\tTARGET\tSESSION\tREASON")
	}
	for _, r := range list {
		if *typ != "" && r.Type != *typ && !strings.HasPrefix(r.Type, strings.TrimSuffix(*typ, ".")+".") {
			continue
		}
		if *limit > 0 && shown >= *limit {
			break
		}
		shown++
		if *asJSON {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Local().Format("2006-01-02 15:04:05.000"),
			r.Type, r.Outcome, dash(r.User), dash(r.Target), dash(r.Session), r.Reason)
	}
	if !*asJSON {
		return tw.Flush()
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
