package sqlrepl

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Queued and Notice are the bastion's hooks for approvals: a statement
// held by Check and granted through a Slash command is handed back by
// Queued and runs at once (through Check again); Notice writes a line
// above the next prompt.
func TestQueuedAndNotice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := WriteDemoDB(path); err != nil {
		t.Fatal(err)
	}
	const stmt = "DELETE FROM customers WHERE id = 1"
	var checked []string
	granted, queued := false, ""
	notices := []string{"", "1 approval request waiting: type /approvals"}
	o := Options{
		Target: Target{Name: "demo", Kind: "sqlite", Path: path},
		Check: func(_ context.Context, s string) error {
			checked = append(checked, s)
			if strings.HasPrefix(s, "DELETE") && !granted {
				return errors.New("held until approved")
			}
			granted = false // single use
			return nil
		},
		Slash: func(_ context.Context, line string) bool {
			if line != "/approve why" {
				return false
			}
			granted, queued = true, stmt
			return true
		},
		Queued: func() string { q := queued; queued = ""; return q },
		Notice: func() string {
			if len(notices) == 0 {
				return ""
			}
			n := notices[0]
			notices = notices[1:]
			return n
		},
	}
	// A held statement in a script stops it, as any refusal does.
	_, errs, st := run(t, o, stmt+";\n/approve why\n")
	if st != 1 || !strings.Contains(errs, "held until approved") {
		t.Fatalf("status %d, stderr %q", st, errs)
	}
	o.Check = func(_ context.Context, s string) error { checked = append(checked, s); return nil }
	checked = nil
	out, errs, st := run(t, o, "/approve why\nSELECT count(*) AS n FROM customers WHERE id = 1;\n")
	if st != 0 || !strings.Contains(out, "1 row affected") || !strings.Contains(out, " 0\n(1 row)") {
		t.Fatalf("queued statement: status %d\n%s\n%s", st, out, errs)
	}
	if len(checked) != 2 || checked[0] != stmt {
		t.Errorf("Check saw %q; want the queued statement first, then the count", checked)
	}

	// Interactive: the notice is written above the second prompt.
	tm := startTerm(t, o)
	tm.expect(t, "demo=> ", 5*time.Second)
	tm.send(t, "SELECT 1;\r")
	tm.expect(t, "1 approval request waiting: type /approvals\r\ndemo=> ", 5*time.Second)
}
