package testharness

import (
	"context"
	"database/sql"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestStartMariaDB(t *testing.T) {
	start := time.Now()
	m := StartMariaDB(t)
	t.Logf("mariadb ready on %s in %v", m.Addr(), time.Since(start))
	if strings.Contains(m.DSN(), m.Password) {
		t.Errorf("DSN %q carries the password", m.DSN())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(pw string) *sql.DB {
		cfg, err := mysql.ParseDSN(m.DSN())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Passwd = pw
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return sql.OpenDB(c)
	}
	for _, pw := range []string{"", "wrong-password"} {
		db := open(pw)
		if err := db.PingContext(ctx); err == nil {
			t.Errorf("login with password %q succeeded; want refused", pw)
		}
		db.Close()
	}
	db := open(m.Password)
	defer db.Close()
	var user, dbname string
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER(), DATABASE()").Scan(&user, &dbname); err != nil {
		t.Fatalf("query with the password: %v", err)
	}
	if !strings.HasPrefix(user, m.User+"@") || dbname != m.Database {
		t.Errorf("user, database = %q, %q; want %s@…, %s", user, dbname, m.User, m.Database)
	}
	db.Close()
	m.Exec(t, "CREATE TABLE t (id INT PRIMARY KEY, card_number VARCHAR(19)); INSERT INTO t VALUES (1, '4111111111111111')")

	pid := m.PID
	m.Stop()
	m.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("mariadbd %d still runs after Stop", pid)
	}
}
