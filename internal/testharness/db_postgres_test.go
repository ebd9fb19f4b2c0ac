package testharness

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestStartPostgres(t *testing.T) {
	start := time.Now()
	pg := StartPostgres(t)
	t.Logf("postgres ready on %s in %v", pg.Addr(), time.Since(start))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgconn.ParseConfig(pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pg.DSN(), pg.Password) {
		t.Errorf("DSN %q carries the password", pg.DSN())
	}

	// Password authentication is enforced on TCP: no password, or a wrong
	// one, is refused.
	for _, pw := range []string{"", "wrong-password"} {
		cfg.Password = pw
		if c, err := pgconn.ConnectConfig(ctx, cfg); err == nil {
			c.Close(ctx)
			t.Errorf("login with password %q succeeded; want refused", pw)
		}
	}
	cfg.Password = pg.Password
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("login with the password: %v", err)
	}
	res, err := c.Exec(ctx, "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	row := res[0].Rows[0]
	if string(row[0]) != pg.User || string(row[1]) != pg.Database || string(row[2]) != "f" {
		t.Errorf("user, database, superuser = %q, %q, %q; want %q, %q, f", row[0], row[1], row[2], pg.User, pg.Database)
	}
	c.Close(ctx)

	pg.Exec(t, "CREATE TABLE t (id int PRIMARY KEY, card_number text); INSERT INTO t VALUES (1, '4111111111111111')")

	// Stop ends the server and is idempotent.
	pid := pg.PID
	pg.Stop()
	pg.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("postmaster %d still runs after Stop", pid)
	}
	if _, err := os.Stat(pg.SocketDir + "/.s.PGSQL." + strconv.Itoa(pg.Port)); err == nil {
		t.Errorf("socket still there after Stop")
	}
}

func TestStartPostgresParallel(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pg := StartPostgres(t)
			pg.Exec(t, "SELECT 1")
		})
	}
}
