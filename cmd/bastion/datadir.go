package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// Names of the files the bastion keeps in data_dir.
const (
	storeFile    = "bastion.db"
	userCAFile   = "user_ca"
	hostKeyFile  = "host_key"
	hostCAFile   = "host_ca"
	targetCAFile = "target_ca"
	auditKeyFile = "audit_key"
)

// authorities are the bastion's keys, created on first use.
type authorities struct {
	userCA, hostKey, hostCA, targetCA, auditKey gossh.Signer
}

// openDataDir creates data_dir (0700) if needed and returns a rooted handle:
// every file the bastion writes there goes through it, so no name in a config
// or an id can escape the directory.
func openDataDir(cfg *policy.Config) (*os.Root, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	root, err := os.OpenRoot(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open data_dir %s: %w", cfg.DataDir, err)
	}
	return root, nil
}

func loadAuthorities(root *os.Root) (*authorities, error) {
	var a authorities
	for _, k := range []struct {
		name string
		dst  *gossh.Signer
	}{{userCAFile, &a.userCA}, {hostKeyFile, &a.hostKey}, {hostCAFile, &a.hostCA}, {targetCAFile, &a.targetCA}, {auditKeyFile, &a.auditKey}} {
		s, err := keys.LoadOrCreateSigner(root, k.name)
		if err != nil {
			return nil, err
		}
		*k.dst = s
	}
	return &a, nil
}

// openOps reaches the store: through the running server's admin socket when
// one answers, else by opening the store file of a stopped server.
func openOps(cfg *policy.Config) (admin.Ops, func(), error) {
	sock := filepath.Join(cfg.DataDir, admin.SocketName)
	if c, err := admin.Dial(sock); err == nil {
		return c, func() {}, nil
	}
	path := filepath.Join(cfg.DataDir, storeFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("no store at %s: has `bastion serve` run with this configuration (data_dir %s)?", path, cfg.DataDir)
	}
	st, err := recorder.OpenBolt(path, recorder.BoltOptions{Timeout: 2 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	return st, func() { _ = st.Close() }, nil
}

// openConfigOps loads the configuration and reaches its store: the
// beginning of every on-host command that reads or writes the store.
func openConfigOps(e *env, cfgPath string) (admin.Ops, func(), error) {
	cfg, err := loadConfig(e, cfgPath)
	if err != nil {
		return nil, nil, err
	}
	return openOps(cfg)
}

func loadConfig(e *env, flagValue string) (*policy.Config, error) {
	return policy.Load(configPath(e, flagValue))
}

// withTimeout bounds an on-host command's store access.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}
