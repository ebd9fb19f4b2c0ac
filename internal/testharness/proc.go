package testharness

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procID names a process by pid and start time, so that a pid reused by an
// unrelated process after ours exited is never signalled.
type procID struct {
	pid   int
	start uint64 // clock ticks after boot, /proc/<pid>/stat field 22
}

// procStat is what the harness needs from /proc/<pid>/stat.
type procStat struct {
	ppid  int
	state byte
	start uint64
}

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, state: f[0][0], start: start}, true
}

// alive reports whether the process runs (zombies have already exited).
func (p procStat) alive() bool { return p.state != 'Z' && p.state != 'X' }

// findProcs returns the live descendants of root, parents before their
// children, then the live processes whose initial environment holds tag
// ("NAME=value"). Without /proc (not
// Linux) it finds nothing, and Stop falls back to the process group.
func findProcs(root int, tag string) []procID {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok || !st.alive() {
			continue
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}

	// Parents before their children: the per-connection sshd processes
	// come before the commands they run, so that a kill in this order
	// takes the connection down before the command's death can be
	// reported over it (a test of a dead target would otherwise see, at
	// random, a command killed by a signal on a target still alive).
	found := map[int]bool{}
	var order []int
	queue := append([]int(nil), children[root]...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if found[pid] {
			continue
		}
		found[pid] = true
		order = append(order, pid)
		queue = append(queue, children[pid]...)
	}
	want := []byte(tag)
	for pid := range stats {
		if found[pid] {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				found[pid] = true
				order = append(order, pid)
				break
			}
		}
	}

	out := make([]procID, 0, len(order))
	for _, pid := range order {
		out = append(out, procID{pid: pid, start: stats[pid].start})
	}
	return out
}

// liveProcs returns the processes of ps that still run as the same process.
func liveProcs(ps []procID) []procID {
	var out []procID
	seen := map[procID]bool{}
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		if st, ok := readStat(p.pid); ok && st.alive() && st.start == p.start {
			out = append(out, p)
		}
	}
	return out
}
