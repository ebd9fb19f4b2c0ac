package testharness

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestFindProcsParentsFirst: a tree of three generations comes back with
// every process after its parent, the order SSHD.Stop kills in.
func TestFindProcsParentsFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `sh -c 'sh -c "sleep 30" & sleep 30' & sh -c 'sleep 30' & wait`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range findProcs(cmd.Process.Pid, "BASTION_TEST_NO_TAG=1") {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		cancel()
		_ = cmd.Wait()
	}()
	var ps []procID
	for deadline := time.Now().Add(10 * time.Second); ; {
		ps = findProcs(cmd.Process.Pid, "BASTION_TEST_NO_TAG=1")
		if len(ps) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ps) < 4 {
		t.Fatalf("found %d processes, want the 4 of the tree", len(ps))
	}
	pos := map[int]int{cmd.Process.Pid: -1}
	for i, p := range ps {
		pos[p.pid] = i
	}
	for i, p := range ps {
		st, ok := readStat(p.pid)
		if !ok {
			continue
		}
		if at, ok := pos[st.ppid]; !ok || at >= i {
			t.Errorf("process %d (place %d) comes before its parent %d (place %d, known %v)", p.pid, i, st.ppid, at, ok)
		}
	}
}
