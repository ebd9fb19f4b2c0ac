package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/bastion/metrics"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
	"github.com/bastion-dev/bastion/recorder/siem"
)

// hostCertValidity is how long the bastion's host certificate lasts. It is
// re-signed at every start, so a year only matters for a server that never
// restarts.
const hostCertValidity = 365 * 24 * time.Hour

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "serve [--config F] [--demo] [--listen ADDR] [--shutdown-grace 30s] [--cpuprofile FILE]")
	cfgPath := fs.String("config", "", "configuration file (default $BASTION_CONFIG, then ./bastion.yaml)")
	demo := fs.Bool("demo", false, "run the embedded demo: data in ./.bastion-demo, a demo target, instructions printed")
	listen := fs.String("listen", "", "override the listen address")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "on SIGTERM, how long open sessions may finish before they are closed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file, for performance work")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var (
		cfg *policy.Config
		err error
	)
	if *demo {
		cfg, err = demoConfig(demoDir)
	} else {
		cfg, err = loadConfig(e, *cfgPath)
	}
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *demo {
		// The demo works without its identity provider (keys sign does not
		// need it): a busy port costs only `ssh login@`.
		if idp, err := startDemoIdP(ctx, e); err != nil {
			e.log.Warn("demo identity provider not started; ssh login@ will not work in this demo", "err", err)
		} else {
			defer idp.Close()
		}
	}
	return serve(ctx, e, cfg, *demo, *grace)
}

func serve(ctx context.Context, e *env, cfg *policy.Config, demo bool, grace time.Duration) error {
	root, err := openDataDir(cfg)
	if err != nil {
		return err
	}
	defer root.Close()
	var created []string // keys made on this start: changes to credentials, for the trail
	for _, name := range []string{userCAFile, hostKeyFile, hostCAFile, targetCAFile, auditKeyFile} {
		if _, err := root.Stat(name); errors.Is(err, os.ErrNotExist) {
			created = append(created, name)
		}
	}
	auth, err := loadAuthorities(root)
	if err != nil {
		return err
	}
	store, err := recorder.OpenBolt(filepath.Join(cfg.DataDir, storeFile), recorder.BoltOptions{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer store.Close()
	// The SIEM copy and the metrics watch the trail from its first record
	// (server.start) to its last (the final checkpoint): their defers run
	// after the one that writes server.stop.
	met, stopExports, err := startExports(e, cfg, store)
	if err != nil {
		return err
	}
	defer stopExports()
	now := time.Now()
	if ids, err := store.MarkInterrupted(ctx, now); err != nil {
		return fmt.Errorf("recover sessions of the previous run: %w", err)
	} else if len(ids) > 0 {
		e.log.Warn("sessions of the previous run marked interrupted", "count", len(ids), "ids", ids)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	hostName, port := hostPort(ln.Addr())
	hostCert, err := keys.IssueHostCert(auth.hostCA, auth.hostKey.PublicKey(), []string{hostName, "localhost", "127.0.0.1"}, now, hostCertValidity)
	if err != nil {
		_ = ln.Close()
		return err
	}
	certSigner, err := gossh.NewCertSigner(hostCert, auth.hostKey)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("host certificate signer: %w", err)
	}
	secret, err := oidcSecret(cfg, e)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv, err := bastion.New(bastion.Options{
		OIDCClientSecret: secret,
		Config:           cfg,
		HostSigners:      []gossh.Signer{auth.hostKey, certSigner},
		UserCA:           auth.userCA,
		TargetCA:         auth.targetCA,
		AuditKey:         auth.auditKey,
		Store:            store,
		Logger:           e.log,
		HostName:         hostName,
		Metrics:          met,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}

	adminLn, err := admin.Listen(filepath.Join(cfg.DataDir, admin.SocketName))
	if err != nil {
		_ = ln.Close()
		return err
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	adminDone := make(chan error, 1)
	reload := func() error {
		if cfg.Path == "" {
			return errors.New("the configuration has no file to re-read")
		}
		next, err := policy.Load(cfg.Path)
		if err != nil {
			e.log.Error("reload refused, the old policy stays in force", "file", cfg.Path, "err", err)
			return fmt.Errorf("reload refused, the old policy stays in force: %w", err)
		}
		return srv.Reload(next)
	}
	go func() {
		adminDone <- admin.Serve(adminCtx, adminLn, admin.Handler(store, e.log, admin.Hooks{OnRevoke: srv.Revoked, Reload: reload}))
	}()
	// SIGHUP re-reads the configuration, as daemons do.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-adminCtx.Done():
				return
			case <-hup:
				_ = reload()
			}
		}
	}()
	defer func() {
		stopAdmin()
		<-adminDone
	}()

	if err := writeKnownHosts(cfg, root, ln.Addr(), auth); err != nil {
		e.log.Warn("could not write known_hosts for clients", "err", err)
	}
	audit := func(typ string) {
		if _, err := store.AppendAudit(context.Background(), recorder.AuditRecord{Type: typ, Outcome: recorder.OutcomeSuccess,
			Detail: map[string]string{"listen": ln.Addr().String()}}); err != nil {
			e.log.Error("audit", "type", typ, "err", err)
		}
	}
	audit("server.start")
	for _, name := range created {
		signer := map[string]gossh.Signer{userCAFile: auth.userCA, hostKeyFile: auth.hostKey, hostCAFile: auth.hostCA,
			targetCAFile: auth.targetCA, auditKeyFile: auth.auditKey}[name]
		if _, err := store.AppendAudit(context.Background(), recorder.AuditRecord{Type: "key.created", Outcome: recorder.OutcomeSuccess,
			KeyFingerprint: gossh.FingerprintSHA256(signer.PublicKey()), Detail: map[string]string{"key": name}}); err != nil {
			e.log.Error("audit", "type", "key.created", "err", err)
		}
	}
	defer func() {
		audit("server.stop")
		// The last record gets a signed checkpoint too.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Checkpoint(cctx); err != nil {
			e.log.Error("audit checkpoint", "err", err)
		}
	}()
	e.log.Info("bastion listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "targets", len(cfg.Targets))
	if demo {
		printDemoHelp(e, cfg, hostName, port)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// A stop must wait until Serve has taken up the listener (Accepting).
	select {
	case err := <-served:
		return err
	case <-srv.Accepting():
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	e.log.Info("shutting down: no new connections; open sessions may finish", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served
	return err
}

// writeKnownHosts leaves data_dir/known_hosts for clients of this bastion:
// the host key and the host CA, so `ssh -o UserKnownHostsFile=...` works
// without trust on first use.
func writeKnownHosts(cfg *policy.Config, root *os.Root, addr net.Addr, auth *authorities) error {
	host, port := hostPort(addr)
	hostPattern := knownhosts.Normalize(net.JoinHostPort(host, fmt.Sprint(port)))
	line := knownhosts.Line([]string{hostPattern}, auth.hostKey.PublicKey()) + "\n" +
		keys.KnownHostsCALine(hostPattern, auth.hostCA.PublicKey()) + "\n"
	return root.WriteFile("known_hosts", []byte(line), 0o644)
}

func hostPort(a net.Addr) (string, int) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String(), 0
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return host, ta.Port
}

// oidcSecret reads the OIDC client secret from client_secret_file or
// client_secret_env. The secret never appears in the config itself.
func oidcSecret(cfg *policy.Config, e *env) (string, error) {
	o := cfg.OIDC
	if !o.Enabled() {
		return "", nil
	}
	switch {
	case o.ClientSecretFile != "":
		b, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("oidc.client_secret_file: %w", err)
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return "", fmt.Errorf("oidc.client_secret_file %s is empty", o.ClientSecretFile)
		}
		return secret, nil
	case o.ClientSecretEnv != "":
		secret := e.getenv(o.ClientSecretEnv)
		if secret == "" {
			return "", fmt.Errorf("oidc.client_secret_env: $%s is empty or unset", o.ClientSecretEnv)
		}
		return secret, nil
	}
	return "", errors.New("oidc: set client_secret_file or client_secret_env")
}

// startExports starts what copies the audit trail out of the store: the
// syslog sink (audit.syslog) and the Prometheus endpoint (metrics.listen),
// each off unless configured. The returned function stops both, after
// sending what the sink still holds; the goroutines started here end
// there.
func startExports(e *env, cfg *policy.Config, store *recorder.BoltStore) (*metrics.Metrics, func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if sl := cfg.Audit.Syslog; sl != nil {
		sink, err := siem.New(siem.Config{Network: sl.Network, Address: sl.Address, AppName: sl.AppName,
			Facility: sl.Facility, Queue: sl.Queue}, e.log)
		if err != nil {
			return nil, nil, err
		}
		sctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sink.Run(sctx) }()
		unsubscribe := store.OnAudit(sink.Observe)
		stops = append(stops, func() {
			unsubscribe()
			cancel()
			<-done
			e.log.Info("syslog copy of the audit trail stopped", "sent", sink.Sent(), "dropped", sink.Dropped())
		})
		e.log.Info("audit records are copied to syslog", "network", sl.Network, "address", sl.Address)
	}
	if cfg.Metrics.Listen == "" {
		return nil, stopAll, nil
	}
	reg := prometheus.NewRegistry()
	met, err := metrics.New(reg)
	if err == nil {
		err = metrics.Gauges(reg, func(ctx context.Context) (int, error) {
			list, err := store.ListApprovals(ctx)
			n := 0
			for _, a := range list {
				if a.State == recorder.ApprovalPending && time.Now().Before(a.Expires) {
					n++
				}
			}
			return n, err
		}, func() (int64, error) {
			fi, err := os.Stat(store.Path())
			if err != nil {
				return 0, err
			}
			return fi.Size(), nil
		}, e.log)
	}
	var ln net.Listener
	if err == nil {
		ln, err = metrics.Listen(cfg.Metrics.Listen)
	}
	if err != nil {
		stopAll()
		return nil, nil, err
	}
	unsubscribe := store.OnAudit(met.Observe)
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.Serve(mctx, ln, reg, e.log); err != nil {
			e.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	stops = append(stops, func() {
		unsubscribe()
		cancel()
		<-done
	})
	e.log.Info("metrics endpoint listening", "addr", ln.Addr().String())
	return met, stopAll, nil
}

// startCPUProfile profiles the process into path until the returned
// function is called (at the end of serve, after a clean shutdown).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
