package testharness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a real MariaDB server (Debian's mariadb-server package) on
// 127.0.0.1:<free port>, with its data directory and unix socket in a temp
// dir, stopped by t.Cleanup. It has a database and a user with a password
// who may log in over TCP from anywhere (the server listens on loopback
// only); root logs in on the unix socket without a password, for Exec's
// fixtures.
type MariaDB struct {
	Host     string // "127.0.0.1"
	Port     int
	User     string
	Password string
	Database string // User has all privileges on it
	// Socket is the server's unix socket.
	Socket string
	// Dir holds everything: data directory, socket and log.
	Dir     string
	LogFile string
	PID     int

	t        testing.TB
	srv      *dbProcess
	stopOnce sync.Once
	stopErr  error
}

// DSN is a go-sql-driver/mysql DSN for User on Database over TCP, without
// the password (pass Password separately, as the bastion does).
func (m *MariaDB) DSN() string {
	return fmt.Sprintf("%s@tcp(%s)/%s", m.User, m.Addr(), m.Database)
}

// Addr is "127.0.0.1:port".
func (m *MariaDB) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// Log returns what the server has logged so far.
func (m *MariaDB) Log() string { return readOrErr(m.LogFile) }

// StartMariaDB initialises and starts a MariaDB server for the test and
// stops it in t.Cleanup. As root it runs as the "mysql" user (or nobody);
// without MariaDB the test is skipped with an install hint, but only for a
// developer who is not root and not in CI.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	tools := requireDBTool(t, mariadbTools, "mariadbd and mariadb-install-db", "mariadb-server")
	installDB, mariadbd, _ := strings.Cut(tools, "\n")

	dir := t.TempDir()
	cred := dbCredential(t, dir, "mysql")
	m := &MariaDB{
		Host: "127.0.0.1", User: "bastion", Database: "ledger", Password: randomSecret(t),
		Socket: filepath.Join(dir, "mysqld.sock"), Dir: dir, LogFile: filepath.Join(dir, "mariadb.log"), t: t,
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), dbInitTimeout)
	defer cancel()
	// --no-defaults everywhere: /etc/mysql's config (socket, datadir, user)
	// belongs to the system's server, not to this one.
	out, err := runAs(ctx, cred, dir, installDB, "--no-defaults", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
	if err != nil {
		t.Fatalf("mariadb-install-db %s: %v\n%s", data, err, out)
	}

	for try := 1; ; try++ {
		m.Port = FreePort(t)
		srv, err := startDBProcess(cred, dir, m.LogFile, mariadbd, "--no-defaults",
			"--datadir="+data, "--socket="+m.Socket, "--port="+strconv.Itoa(m.Port),
			"--bind-address=127.0.0.1", "--pid-file="+filepath.Join(dir, "mariadbd.pid"),
			"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M",
			"--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--max-connections=50",
			"--character-set-server=utf8mb4", "--tmpdir="+dir)
		if err != nil {
			t.Fatalf("start mariadbd: %v", err)
		}
		m.srv, m.PID = srv, srv.pid()
		err = srv.waitReady(dbReadyTimeout, func(ctx context.Context) error {
			db, err := m.rootDB()
			if err != nil {
				return err
			}
			defer db.Close()
			return db.PingContext(ctx)
		})
		if err == nil {
			break
		}
		log := m.Log()
		if stopErr := srv.stop(syscall.SIGKILL); stopErr != nil {
			t.Fatalf("stop mariadbd after a failed start: %v\nlog:\n%s", stopErr, log)
		}
		if try < dbStartTries && strings.Contains(log, "Address already in use") {
			continue
		}
		t.Fatalf("start mariadbd on %s: %v\nlog (%s):\n%s", m.Addr(), err, m.LogFile, log)
	}
	t.Cleanup(m.Stop)

	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	m.rootExec(t,
		"CREATE DATABASE "+m.Database+" CHARACTER SET utf8mb4",
		"CREATE USER "+q(m.User)+"@'%' IDENTIFIED BY "+q(m.Password),
		"CREATE USER "+q(m.User)+"@'localhost' IDENTIFIED BY "+q(m.Password),
		"GRANT ALL ON "+m.Database+".* TO "+q(m.User)+"@'%'",
		"GRANT ALL ON "+m.Database+".* TO "+q(m.User)+"@'localhost'",
	)
	return m
}

// mariadbTools finds mariadb-install-db and mariadbd (newline-separated);
// Debian puts the server in /usr/sbin, often not in a user's PATH.
func mariadbTools() (string, error) {
	var found []string
	for _, names := range [][]string{{"mariadb-install-db", "mysql_install_db"}, {"mariadbd", "mysqld"}} {
		p := ""
		for _, n := range names {
			if lp, err := exec.LookPath(n); err == nil {
				p = lp
				break
			}
			for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
				if isExecutable(filepath.Join(d, n)) {
					p = filepath.Join(d, n)
					break
				}
			}
			if p != "" {
				break
			}
		}
		if p == "" {
			return "", errors.New(names[0] + " not found in PATH or sbin directories")
		}
		found = append(found, p)
	}
	return strings.Join(found, "\n"), nil
}

// rootDB opens a pool for root on the unix socket.
func (m *MariaDB) rootDB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", m.Socket
	cfg.Timeout = 2 * time.Second
	cfg.Logger = silentLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// silentLogger keeps the driver's connection noise while the server starts
// out of the test output.
type silentLogger struct{}

func (silentLogger) Print(...any) {}

func (m *MariaDB) rootExec(t testing.TB, stmts ...string) {
	t.Helper()
	db, err := m.rootDB()
	if err != nil {
		t.Fatalf("mariadb root: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("mariadb root: %s: %v", s, err)
		}
	}
}

// Exec runs statements (several per string are fine) as User on Database
// over TCP with the password.
func (m *MariaDB) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(m.DSN())
	if err != nil {
		t.Fatalf("parse mariadb dsn: %v", err)
	}
	cfg.Passwd = m.Password
	cfg.MultiStatements = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mariadb connector: %v", err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("mariadb: %s: %v", s, err)
		}
	}
}

// Stop shuts the server down (SIGTERM: a clean shutdown; SIGKILL after
// dbStopTimeout). It is registered with t.Cleanup and safe to call again.
func (m *MariaDB) Stop() {
	m.stopOnce.Do(func() {
		if m.srv != nil {
			m.stopErr = m.srv.stop(syscall.SIGTERM)
		}
	})
	if m.stopErr != nil {
		m.t.Errorf("stop mariadbd %s: %v\nlog:\n%s", m.Addr(), m.stopErr, m.Log())
	}
}
