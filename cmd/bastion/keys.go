package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

func runKeys(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("keys: want sign, user-ca, target-ca or host-ca")
	}
	switch args[0] {
	case "sign":
		return runKeysSign(ctx, e, args[1:])
	case "user-ca", "target-ca", "host-ca":
		return runKeysPrint(e, args[0], args[1:])
	}
	return usagef("keys: unknown subcommand %q; want sign, user-ca, target-ca or host-ca", args[0])
}

// runKeysSign is the bootstrap and break-glass path: an operator on the
// bastion host signs a certificate for a user's public key.
func runKeysSign(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys sign", "keys sign [--config F] --user U [--groups a,b] [--ttl 1h] PUBKEY_FILE")
	cfgPath := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "the certificate's principal (required)")
	groups := fs.String("groups", "", "comma-separated groups for the policy")
	ttl := fs.String("ttl", "", "validity (default certificates.ttl; at most certificates.max_ttl)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *user == "" || len(pos) != 1 {
		return usagef("want --user U and one PUBKEY_FILE")
	}
	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		return err
	}
	lifetime := time.Duration(cfg.Certificates.TTL)
	if *ttl != "" {
		if lifetime, err = policy.ParseDuration(*ttl); err != nil {
			return usagef("--ttl: %v", err)
		}
	}
	raw, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("read public key: %w", err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(raw)
	if err != nil {
		return fmt.Errorf("parse public key %s: %w (want one line as in id_ed25519.pub)", pos[0], err)
	}
	root, err := openDataDir(cfg)
	if err != nil {
		return err
	}
	defer root.Close()
	auth, err := loadAuthorities(root)
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
	serial, err := ops.NextSerial(ctx)
	if err != nil {
		return fmt.Errorf("allocate serial: %w", err)
	}
	now := time.Now()
	cert, err := keys.IssueUserCert(auth.userCA, pub, keys.UserCertRequest{
		User: *user, Groups: splitList(*groups), TTL: lifetime,
		MaxTTL: time.Duration(cfg.Certificates.MaxTTL), Serial: serial, Now: now,
	})
	if err != nil {
		return err
	}
	err = ops.RecordCert(ctx, recorder.CertRecord{
		Serial: serial, User: *user, Groups: splitList(*groups),
		KeyFingerprint: gossh.FingerprintSHA256(pub), IssuedAt: now,
		ValidBefore: time.Unix(int64(cert.ValidBefore), 0), IssuedBy: "keys sign",
	})
	if err != nil {
		return fmt.Errorf("record certificate %d: %w", serial, err)
	}
	if _, err := ops.AppendAudit(ctx, recorder.AuditRecord{
		Type: "cert.issued", Outcome: recorder.OutcomeSuccess, User: *user, Serial: serial,
		KeyFingerprint: gossh.FingerprintSHA256(pub),
		Detail: map[string]string{"by": "keys sign", "operator": e.getenv("USER"), "groups": strings.Join(splitList(*groups), ","),
			"valid_before": time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339)},
	}); err != nil {
		return fmt.Errorf("audit certificate %d: %w", serial, err)
	}
	_, err = e.stdout.Write(keys.AuthorizedKeyLine(cert))
	return err
}

// runKeysPrint prints a CA public key: target-ca for a target's
// TrustedUserCAKeys, host-ca for clients' known_hosts, user-ca for reference.
func runKeysPrint(e *env, which string, args []string) error {
	fs := newFlags(e, "keys "+which, "keys "+which+" [--config F]")
	cfgPath := fs.String("config", "", "configuration file")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e, *cfgPath)
	if err != nil {
		return err
	}
	root, err := openDataDir(cfg)
	if err != nil {
		return err
	}
	defer root.Close()
	auth, err := loadAuthorities(root)
	if err != nil {
		return err
	}
	switch which {
	case "user-ca":
		_, err = e.stdout.Write(keys.AuthorizedKeyLine(auth.userCA.PublicKey()))
	case "target-ca":
		_, err = e.stdout.Write(keys.AuthorizedKeyLine(auth.targetCA.PublicKey()))
	case "host-ca":
		_, err = fmt.Fprintln(e.stdout, keys.KnownHostsCALine("*", auth.hostCA.PublicKey()))
	}
	return err
}
