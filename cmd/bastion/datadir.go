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

// startupWait is how long an on-host command waits for a server that holds
// the store lock but does not answer on its admin socket yet. A starting
// server takes the lock first (it marks the last run's sessions
// interrupted) and opens the socket a moment later; a command run in that
// gap must wait for the socket, not fail on the lock.
const startupWait = 15 * time.Second

// openOps reaches the store: through the running server's admin socket when
// one answers, else by opening the store file of a stopped server.
func openOps(cfg *policy.Config) (admin.Ops, func(), error) {
	return openOpsWait(cfg, startupWait)
}

// openOpsWait is openOps that gives a starting server up to wait to open
// its admin socket.
func openOpsWait(cfg *policy.Config, wait time.Duration) (admin.Ops, func(), error) {
	sock := filepath.Join(cfg.DataDir, admin.SocketName)
	path := filepath.Join(cfg.DataDir, storeFile)
	deadline := time.Now().Add(wait)
	for {
		if c, err := admin.Dial(sock); err == nil {
			return c, func() {}, nil
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("no store at %s: has `bastion serve` run with this configuration (data_dir %s)?", path, cfg.DataDir)
		}
		// A short lock timeout, so the socket is tried again soon.
		lockWait := min(500*time.Millisecond, max(time.Until(deadline), 50*time.Millisecond))
		st, err := recorder.OpenBolt(path, recorder.BoltOptions{Timeout: lockWait})
		if err == nil {
			return st, func() { _ = st.Close() }, nil
		}
		if !errors.Is(err, recorder.ErrLocked) {
			return nil, nil, err
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w; nothing answered on that socket for %s: check that the server is up (its log says why not), or stop it", err, wait)
		}
	}
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
