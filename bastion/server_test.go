package bastion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// failingStore is a real store whose appends start failing on demand, as a
// full disk would make them.
type failingStore struct {
	recorder.Store
	fail atomic.Bool
}

func (f *failingStore) AppendChunk(ctx context.Context, id string, events []byte) error {
	if f.fail.Load() {
		return errors.New("disk full (test)")
	}
	return f.Store.AppendChunk(ctx, id, events)
}

// AppendPrepared fails like AppendChunk: the recorder's flushes arrive here.
func (f *failingStore) AppendPrepared(ctx context.Context, id string, chunks []recorder.PreparedChunk) error {
	if f.fail.Load() {
		return errors.New("disk full (test)")
	}
	return f.Store.AppendPrepared(ctx, id, chunks)
}

type testServer struct {
	addr   string
	userCA gossh.Signer
	host   gossh.PublicKey
	store  *failingStore
}

func startTestServer(t *testing.T, yaml string) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg, err := policy.Parse([]byte(fmt.Sprintf("listen: \"127.0.0.1:2222\"\ndata_dir: %q\n%s", dir, yaml)), "test.yaml", dir)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	userCA, err := keys.LoadOrCreateSigner(root, "user_ca")
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := keys.LoadOrCreateSigner(root, "host_key")
	if err != nil {
		t.Fatal(err)
	}
	bolt, err := recorder.OpenBolt(filepath.Join(dir, "bastion.db"), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := &failingStore{Store: bolt}
	srv, err := New(Options{Config: cfg, HostSigners: []gossh.Signer{hostKey}, UserCA: userCA, Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HostName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	<-srv.Accepting()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
		_ = bolt.Close()
	})
	return &testServer{addr: ln.Addr().String(), userCA: userCA, host: hostKey.PublicKey(), store: store}
}

// aliceKey is a fresh key for alice (groups sre) and its certificate.
func (ts *testServer) aliceKey(t *testing.T) (ed25519.PrivateKey, gossh.Signer, *gossh.Certificate) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keys.IssueUserCert(ts.userCA, signer.PublicKey(), keys.UserCertRequest{
		User: "alice", Groups: []string{"sre"}, TTL: time.Hour, MaxTTL: 24 * time.Hour, Serial: 7, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return priv, signer, cert
}

// dial logs in as alice (groups sre) with a fresh certificate.
func (ts *testServer) dial(t *testing.T) *gossh.Client {
	t.Helper()
	_, signer, cert := ts.aliceKey(t)
	cs, err := gossh.NewCertSigner(cert, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(cs)},
		HostKeyCallback: gossh.FixedHostKey(ts.host), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRecordingFailure(t *testing.T) {
	const targets = `
targets:
  - { name: talk, kind: command, argv: ["/bin/sh", "-c", "echo first; sleep 0.7; echo second"] }
roles:
  - { name: sre, groups: [sre], targets: ["*"] }
`
	cases := []struct {
		onFailure  string
		wantSecond bool
		wantErr    string
	}{
		{"terminate", false, "session recording failed"},
		{"continue", true, ""},
	}
	for _, c := range cases {
		t.Run(c.onFailure, func(t *testing.T) {
			ts := startTestServer(t, targets+"recording: { flush_interval: 100ms, on_failure: "+c.onFailure+" }\n")
			sess, err := ts.dial(t).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr testharness.SyncBuffer
			sess.Stdout, sess.Stderr = &stdout, &stderr
			if err := sess.Start("talk"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(stdout.String(), "first") {
				if time.Now().After(deadline) {
					t.Fatal("no first line")
				}
				time.Sleep(10 * time.Millisecond)
			}
			ts.store.fail.Store(true)
			err = sess.Wait()
			if got := strings.Contains(stdout.String(), "second"); got != c.wantSecond {
				t.Errorf("second line delivered %v, want %v (stdout %q)", got, c.wantSecond, stdout.String())
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), c.wantErr) {
					t.Errorf("want failure exit and %q, got err %v stderr %q", c.wantErr, err, stderr.String())
				}
			} else if err != nil {
				t.Errorf("continue mode: session failed: %v (%s)", err, stderr.String())
			}
		})
	}
}

func TestSplitFirstWord(t *testing.T) {
	for _, c := range []struct{ in, first, rest string }{
		{"", "", ""},
		{"web-1", "web-1", ""},
		{"  web-1   uname -a", "web-1", "uname -a"},
		{"web-1\tprintf '%s  x' a", "web-1", "printf '%s  x' a"},
	} {
		f, r := splitFirstWord(c.in)
		if f != c.first || r != c.rest {
			t.Errorf("splitFirstWord(%q) = %q, %q; want %q, %q", c.in, f, r, c.first, c.rest)
		}
	}
}

func TestEnvAllowed(t *testing.T) {
	for k, want := range map[string]bool{"LANG": true, "LC_ALL": true, "LC_CTYPE": true, "TERM": true,
		"LD_PRELOAD": false, "BASH_ENV": false, "PATH": false, "LANGUAGE": false} {
		if envAllowed(k) != want {
			t.Errorf("envAllowed(%q) = %v", k, !want)
		}
	}
}

func TestDigestTimeout(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want time.Duration
	}{
		{-1, time.Minute},
		{0, time.Minute},
		{16 << 20, time.Minute + time.Second},
		{1 << 30, time.Minute + 64*time.Second},
		{10 << 30, time.Minute + 640*time.Second},
	} {
		if got := digestTimeout(tt.n); got != tt.want {
			t.Errorf("digestTimeout(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}
