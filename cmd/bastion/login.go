package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/term"

	"github.com/bastion-dev/bastion/keys"
)

// runLogin is `bastion login`: the OIDC login of `ssh login@bastion`, plus
// the files a stock OpenSSH client then needs: IDENTITY-cert.pub next to
// the key, and a @cert-authority line for the bastion's host CA.
func runLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "login", "login --bastion HOST[:PORT] [-i IDENTITY] [--known-hosts FILE]")
	addr := fs.String("bastion", e.getenv("BASTION_HOST"), "the bastion to log in to (default $BASTION_HOST); port 22 unless given")
	home, _ := os.UserHomeDir()
	identity := fs.String("i", filepath.Join(home, ".ssh", "id_ed25519"), "private key to get a certificate for")
	khPath := fs.String("known-hosts", filepath.Join(home, ".ssh", "known_hosts"), "known_hosts file to check the bastion against and to add its host CA to")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) != 0 || *addr == "" {
		return usagef("want --bastion HOST[:PORT]")
	}
	hostPort := *addr
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		hostPort = net.JoinHostPort(hostPort, "22")
	}
	signer, err := loadIdentity(*identity)
	if err != nil {
		return err
	}
	trust := &hostTrust{path: *khPath, e: e}
	conn, err := gossh.Dial("tcp", hostPort, &gossh.ClientConfig{
		User: "login", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: trust.check,
		// Ask for the host certificate: its CA is what we add to
		// known_hosts, so the bastion can rotate its host key freely.
		HostKeyAlgorithms: []string{gossh.CertAlgoED25519v01, gossh.CertAlgoECDSA256v01, gossh.CertAlgoRSASHA512v01},
		BannerCallback:    func(msg string) error { _, err := fmt.Fprint(e.stderr, msg); return err },
		Timeout:           15 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", hostPort, err)
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		return fmt.Errorf("open login session: %w", err)
	}
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout, sess.Stderr = &out, e.stderr
	if err := sess.Shell(); err != nil {
		return fmt.Errorf("start login: %w", err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- sess.Wait() }()
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err != nil {
		return errors.New("login failed (the bastion said why above)")
	}
	cert, ok := parseCert(out.Bytes())
	if !ok {
		return fmt.Errorf("the bastion sent no certificate (got %d bytes)", out.Len())
	}
	certPath := *identity + "-cert.pub"
	if err := os.WriteFile(certPath, keys.AuthorizedKeyLine(cert), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", certPath, err)
	}
	if err := trust.remember(hostPort); err != nil {
		return err
	}
	groups := cert.Permissions.Extensions[keys.GroupsExtension]
	if groups == "" {
		groups = "none"
	}
	fmt.Fprintf(e.stdout, "You are %s (groups %s). Certificate %s (serial %d) is valid until %s.\n",
		strings.Join(cert.ValidPrincipals, ","), groups, certPath, cert.Serial,
		time.Unix(int64(cert.ValidBefore), 0).Local().Format("2006-01-02 15:04"))
	return nil
}

func parseCert(b []byte) (*gossh.Certificate, bool) {
	k, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, false
	}
	c, ok := k.(*gossh.Certificate)
	return c, ok && c.CertType == gossh.UserCert
}

// loadIdentity reads a private key, asking for its passphrase on the
// terminal when it has one.
func loadIdentity(path string) (gossh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w (create one with ssh-keygen -t ed25519, or pass -i)", err)
	}
	s, err := gossh.ParsePrivateKey(b)
	var missing *gossh.PassphraseMissingError
	if errors.As(err, &missing) {
		tty, terr := os.Open("/dev/tty")
		if terr != nil {
			return nil, fmt.Errorf("%s needs a passphrase and there is no terminal to ask on", path)
		}
		defer tty.Close()
		fmt.Fprintf(os.Stderr, "Enter passphrase for %s: ", path)
		pass, perr := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(os.Stderr)
		if perr != nil {
			return nil, fmt.Errorf("read passphrase: %w", perr)
		}
		s, err = gossh.ParsePrivateKeyWithPassphrase(b, pass)
	}
	if err != nil {
		return nil, fmt.Errorf("parse identity %s: %w", path, err)
	}
	return s, nil
}

// hostTrust checks the bastion's host certificate against known_hosts and,
// on first contact, trusts its CA (as OpenSSH's accept-new does for keys),
// saying so.
type hostTrust struct {
	path string
	e    *env
	ca   gossh.PublicKey // the CA of the certificate the bastion presented
	seen bool            // it was already trusted
}

func (h *hostTrust) check(hostname string, remote net.Addr, key gossh.PublicKey) error {
	cert, ok := key.(*gossh.Certificate)
	if !ok || cert.CertType != gossh.HostCert {
		return fmt.Errorf("the bastion at %s presented no host certificate", hostname)
	}
	h.ca = cert.SignatureKey
	if _, err := os.Stat(h.path); err == nil {
		cb, err := keys.HostKeyCallback(h.path)
		if err != nil {
			return err
		}
		err = cb(hostname, remote, key)
		if err == nil {
			h.seen = true
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) || len(ke.Want) > 0 {
			return err // a known host with another key: never override
		}
	}
	// Unknown host: check the certificate itself before trusting its CA.
	// CheckCert verifies the signature, the validity window and that the
	// certificate names the host we dialled.
	host, _, err := net.SplitHostPort(hostname)
	if err != nil {
		host = hostname
	}
	if err := new(gossh.CertChecker).CheckCert(host, cert); err != nil {
		return fmt.Errorf("the bastion's host certificate is not valid for %s: %w", host, err)
	}
	fmt.Fprintf(h.e.stderr, "bastion: first login to %s: trusting its host CA %s\n", hostname, gossh.FingerprintSHA256(h.ca))
	return nil
}

// remember adds the @cert-authority line for the bastion's host CA.
func (h *hostTrust) remember(hostPort string) error {
	if h.seen || h.ca == nil {
		return nil
	}
	line := keys.KnownHostsCALine(knownhosts.Normalize(hostPort), h.ca)
	if line == "" {
		return fmt.Errorf("cannot write a known_hosts line for %s", hostPort)
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(h.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("add the bastion's host CA to %s: %w", h.path, err)
	}
	defer f.Close()
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	_, err = f.WriteString(line)
	return err
}
