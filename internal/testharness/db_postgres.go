package testharness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Bounds on how long the harness waits for a database server. Ceilings, not
// sleeps: each wait ends as soon as the server is ready or gone.
const (
	dbReadyTimeout = 30 * time.Second
	dbStopTimeout  = 10 * time.Second
	dbStartTries   = 3
	dbInitTimeout  = 60 * time.Second
)

// Postgres is a real PostgreSQL server (Debian's postgresql package) on
// 127.0.0.1:<free port>, with its data directory and unix socket in a temp
// dir, stopped by t.Cleanup. It has a database and a login role with a
// password, and accepts TCP logins from 127.0.0.1 only by scram-sha-256
// password authentication, so that the bastion's password path is the one
// tested.
type Postgres struct {
	Host     string // "127.0.0.1"
	Port     int
	User     string // the application role (not a superuser)
	Password string
	Database string // owned by User
	// SocketDir holds the server's unix socket; the superuser "postgres"
	// logs in there without a password (Exec uses it for fixtures).
	SocketDir string
	// Dir holds everything: data directory, socket and log.
	Dir string
	// LogFile is the server's log, for failure messages (see Log).
	LogFile string
	// PID is the postmaster's process id.
	PID int

	t        testing.TB
	srv      *dbProcess
	stopOnce sync.Once
	stopErr  error
}

// DSN is a pgx connection string for User on Database over TCP, without the
// password (pass Password separately, as the bastion does).
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", p.User, p.Addr(), p.Database)
}

// Addr is "127.0.0.1:port".
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Log returns what the server has logged so far.
func (p *Postgres) Log() string { return readOrErr(p.LogFile) }

// StartPostgres initialises and starts a PostgreSQL server for the test and
// stops it in t.Cleanup.
//
// As root (CI), initdb and postgres refuse to run, so both run as the
// unprivileged "postgres" user (or "nobody"), and the temp dir is handed to
// that user. Without PostgreSQL the test is skipped with an install hint,
// but only for a developer who is not root and not in CI, where `make deps`
// installs it.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := requireDBTool(t, pgBinDir, "initdb", "postgresql")
	initdb, postgres := filepath.Join(bin, "initdb"), filepath.Join(bin, "postgres")

	dir := t.TempDir()
	cred := dbCredential(t, dir, "postgres")
	p := &Postgres{
		Host: "127.0.0.1", User: "bastion", Database: "payments",
		Password: randomSecret(t), SocketDir: dir, Dir: dir,
		LogFile: filepath.Join(dir, "postgres.log"), t: t,
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), dbInitTimeout)
	defer cancel()
	// --no-sync and the settings below trade durability for speed: the
	// cluster lives for one test.
	out, err := runAs(ctx, cred, dir, initdb, "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")
	if err != nil {
		t.Fatalf("initdb %s: %v\n%s", data, err, out)
	}

	for try := 1; ; try++ {
		p.Port = FreePort(t)
		srv, err := startDBProcess(cred, dir, p.LogFile, postgres,
			"-D", data, "-p", strconv.Itoa(p.Port), "-k", dir, "-h", "127.0.0.1",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=40", "-c", "shared_buffers=16MB", "-c", "logging_collector=off",
			"-c", "password_encryption=scram-sha-256")
		if err != nil {
			t.Fatalf("start postgres: %v", err)
		}
		p.srv, p.PID = srv, srv.pid()
		err = srv.waitReady(dbReadyTimeout, func(ctx context.Context) error {
			c, err := pgconn.Connect(ctx, p.superDSN())
			if err != nil {
				return err
			}
			return c.Close(ctx)
		})
		if err == nil {
			break
		}
		log := p.Log()
		if stopErr := srv.stop(syscall.SIGQUIT); stopErr != nil {
			t.Fatalf("stop postgres after a failed start: %v\nlog:\n%s", stopErr, log)
		}
		if try < dbStartTries && strings.Contains(log, "Address already in use") {
			continue
		}
		t.Fatalf("start postgres on %s: %v\nlog (%s):\n%s", p.Addr(), err, p.LogFile, log)
	}
	t.Cleanup(p.Stop)

	// The application role and its database, made by the superuser.
	p.superExec(t,
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", p.User, p.Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", p.Database, p.User))
	return p
}

// superDSN reaches the server as superuser over the unix socket (trust).
func (p *Postgres) superDSN() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5", p.SocketDir, p.Port)
}

func (p *Postgres) superExec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, p.superDSN())
	if err != nil {
		t.Fatalf("connect to postgres as superuser: %v", err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s).ReadAll(); err != nil {
			t.Fatalf("postgres superuser: %s: %v", s, err)
		}
	}
}

// Exec runs statements (e.g. a fixture schema; several per string are fine)
// as User on Database over TCP with the password, so that it also proves
// password authentication works.
func (p *Postgres) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgconn.ParseConfig(p.DSN())
	if err != nil {
		t.Fatalf("parse postgres dsn: %v", err)
	}
	cfg.Password = p.Password
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to postgres as %s: %v", p.User, err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s).ReadAll(); err != nil {
			t.Fatalf("postgres: %s: %v", s, err)
		}
	}
}

// Stop shuts the server down (fast shutdown, then SIGKILL for the whole
// process group). It is registered with t.Cleanup and safe to call again.
func (p *Postgres) Stop() {
	p.stopOnce.Do(func() {
		if p.srv != nil {
			p.stopErr = p.srv.stop(syscall.SIGINT)
		}
	})
	if p.stopErr != nil {
		p.t.Errorf("stop postgres %s: %v\nlog:\n%s", p.Addr(), p.stopErr, p.Log())
	}
}

// pgBinDir finds the directory of initdb and postgres: Debian keeps them out
// of PATH, in /usr/lib/postgresql/<major>/bin; the newest major wins.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // the pattern is valid
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		p, err = filepath.EvalSymlinks(p)
		if err == nil && isExecutable(filepath.Join(filepath.Dir(p), "postgres")) {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New("initdb and postgres not found in /usr/lib/postgresql/*/bin or PATH")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir))) // not a number sorts last
	return n
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// requireDBTool finds a database server's binaries with find, or ends the
// test: skipped with an install hint for a developer who is not root and
// not in CI, failed otherwise (there `make deps` installs pkg).
func requireDBTool(t testing.TB, find func() (string, error), what, pkg string) string {
	t.Helper()
	p, err := find()
	if err == nil {
		return p
	}
	hint := fmt.Sprintf("install it with `make deps` (as root) or `sudo apt-get install -y --no-install-recommends %s`", pkg)
	if os.Getenv("CI") == "" && os.Geteuid() != 0 {
		t.Skipf("%s: %v: %s", what, err, hint)
	}
	t.Fatalf("%s: %v: %s", what, err, hint)
	return ""
}

// randomSecret returns a fresh password for a test server.
func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("generate a password: %v", err)
	}
	return "pw" + hex.EncodeToString(b)
}

// dbCredential decides who runs a database server. As root it is the
// package's own system user (name) or nobody: PostgreSQL refuses to run as
// root and MariaDB should not. dir is handed to that user, and each parent
// directory up to the system temp dir gets search permission so that the
// user can reach it (t.TempDir's parents are 0700). As anyone else it is
// nil: the server runs as the test.
func dbCredential(t testing.TB, dir, name string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.Lookup("nobody"); err != nil {
			t.Fatalf("find an unprivileged user to run the database server (%s or nobody): %v", name, err)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %s has a non-numeric uid %q or gid %q", u.Username, u.Uid, u.Gid)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("hand %s to %s: %v", dir, u.Username, err)
	}
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("stat %s: %v", d, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o111); err != nil {
				t.Fatalf("let %s reach %s: %v", u.Username, d, err)
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
}

// dbEnv is the whole environment of a database server process: the test's
// own (PG*, MYSQL_* variables, a developer's HOME) must not change it.
func dbEnv(dir string) []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + dir, "LANG=C", "LC_ALL=C", "TZ=UTC"}
}

// runAs runs a setup command (initdb, mariadb-install-db) to completion as
// cred, returning its combined output.
func runAs(ctx context.Context, cred *syscall.Credential, dir, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = dbEnv(dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.WaitDelay = dbStopTimeout
	return cmd.CombinedOutput()
}

// dbProcess is a running database server, in its own process group so that
// stop reaches its children (PostgreSQL backends) too.
type dbProcess struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func startDBProcess(cred *syscall.Credential, dir, logFile, bin string, args ...string) (*dbProcess, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = dbEnv(dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	p := &dbProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *dbProcess) pid() int { return p.cmd.Process.Pid }

// waitReady calls probe until it succeeds, the server exits, or timeout.
func (p *dbProcess) waitReady(timeout time.Duration, probe func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("server exited before it was ready: %v", p.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := probe(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %w", timeout, err)
		}
		select {
		case <-p.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends sig, waits for the server to exit (SIGKILL after
// dbStopTimeout), then kills whatever is left in its process group.
func (p *dbProcess) stop(sig syscall.Signal) error {
	pid := p.pid()
	select {
	case <-p.exited:
	default:
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
		select {
		case <-p.exited:
		case <-time.After(dbStopTimeout):
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill process group %d: %w", pid, err)
			}
			select {
			case <-p.exited:
			case <-time.After(dbStopTimeout):
				return fmt.Errorf("server pid %d did not exit after SIGKILL", pid)
			}
		}
	}
	// A server that exits normally has ended its children first; after a
	// SIGKILL they may linger, and go with their process group.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pid, err)
	}
	return nil
}
