package keys

import (
	"crypto/elliptic"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestCheckKeyStrength(t *testing.T) {
	ed := newEd25519(t)
	rsa1024, _ := newRSA(t, 1024)
	rsa2048, _ := newRSA(t, 2048)
	ca := newEd25519(t)

	certOf := func(key ssh.PublicKey, signer ssh.Signer) *ssh.Certificate {
		return signRaw(t, signer, &ssh.Certificate{Key: key, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}})
	}

	tests := []struct {
		name    string
		key     ssh.PublicKey
		wantErr string // "" means accepted; otherwise a substring of the error
	}{
		{"ed25519", ed.PublicKey(), ""},
		{"ecdsa P-256", newECDSA(t, elliptic.P256()).PublicKey(), ""},
		{"ecdsa P-384", newECDSA(t, elliptic.P384()).PublicKey(), ""},
		{"ecdsa P-521", newECDSA(t, elliptic.P521()).PublicKey(), ""},
		{"rsa 2048", rsa2048.PublicKey(), ""},
		{"rsa 1024 names type and size", rsa1024.PublicKey(), "ssh-rsa with 1024 bits is too weak"},
		{"dsa", fakeKey{ssh.InsecureKeyAlgoDSA}, "ssh-dss"},
		{"unknown type", fakeKey{"ssh-mldsa-65"}, "ssh-mldsa-65 is not accepted"},
		{"ecdsa type without a key inside", fakeKey{ssh.KeyAlgoECDSA256}, "cannot inspect curve"},
		{"nil", nil, "no public key"},
		{"typed nil certificate", (*ssh.Certificate)(nil), "nil certificate"},
		{"cert with strong key and CA", certOf(ed.PublicKey(), ca), ""},
		{"cert with weak certified key", certOf(rsa1024.PublicKey(), ca), "certified key: key type ssh-rsa with 1024 bits"},
		{"cert with weak CA", certOf(ed.PublicKey(), rsa1024), "certificate authority key: key type ssh-rsa with 1024 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKeyStrength(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckKeyStrength: %v, want accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckKeyStrength error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidPrincipal(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"alice", true},
		{"a", true},
		{"0day", true},
		{"j.doe", true},
		{"svc_backup-2", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"", false},
		{"Alice", false},
		{"-alice", false},
		{".alice", false},
		{"_alice", false},
		{"al ice", false},
		{"alice,bob", false},
		{"alice@corp", false},
		{"alice\n", false},
		{"ali\x00ce", false},
		{"álice", false},
		{"..", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := ValidPrincipal(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidPrincipal(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

// principalOracle is the documented rule, written independently as a regexp.
var principalOracle = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

func FuzzValidPrincipal(f *testing.F) {
	for _, s := range []string{"alice", "", "Alice", "-x", strings.Repeat("z", 32), strings.Repeat("z", 33), "a.b_c-d", "a\u00e9", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidPrincipal(s)
		if want := principalOracle.MatchString(s); (err == nil) != want {
			t.Fatalf("ValidPrincipal(%q) = %v, oracle says valid=%v", s, err, want)
		}
	})
}

func TestParseGroups(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"sre", []string{"sre"}, false},
		{"sre,audit", []string{"audit", "sre"}, false},
		{"b,a,b", []string{"a", "b"}, false},
		{"Team.A_1-x", []string{"Team.A_1-x"}, false},
		{"a,,b", nil, true},
		{",", nil, true},
		{"a b", nil, true},
		{"a/b", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseGroups(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseGroups(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseGroups(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseGroups(f *testing.F) {
	for _, s := range []string{"", "a", "b,a", "a,,b", "x y", "sre,audit,sre"} {
		f.Add(s)
	}
	groupOracle := regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	f.Fuzz(func(t *testing.T, s string) {
		groups, err := ParseGroups(s)
		if err != nil {
			return
		}
		if !slices.IsSorted(groups) || len(slices.Compact(slices.Clone(groups))) != len(groups) {
			t.Fatalf("ParseGroups(%q) = %q: not sorted and unique", s, groups)
		}
		for _, g := range groups {
			if !groupOracle.MatchString(g) {
				t.Fatalf("ParseGroups(%q) accepted group %q", s, g)
			}
		}
		again, err := ParseGroups(strings.Join(groups, ","))
		if err != nil || !slices.Equal(again, groups) {
			t.Fatalf("round trip of %q: %q, %v", groups, again, err)
		}
	})
}

func TestAuthorizedKeyLine(t *testing.T) {
	ca := newEd25519(t)
	user := newEd25519(t)
	cert := signRaw(t, ca, &ssh.Certificate{Key: user.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}})

	for _, key := range []ssh.PublicKey{user.PublicKey(), cert} {
		line := AuthorizedKeyLine(key)
		if !strings.HasSuffix(string(line), "\n") || strings.Count(string(line), "\n") != 1 {
			t.Fatalf("AuthorizedKeyLine(%s) = %q, want one line ending in newline", key.Type(), line)
		}
		parsed, _, _, rest, err := ssh.ParseAuthorizedKey(line)
		if err != nil || len(rest) != 0 {
			t.Fatalf("ParseAuthorizedKey(%q): %v (rest %q)", line, err, rest)
		}
		if !sameKey(parsed, key) {
			t.Fatalf("AuthorizedKeyLine(%s) did not round-trip", key.Type())
		}
	}
	for _, k := range []ssh.PublicKey{nil, (*ssh.Certificate)(nil), &ssh.Certificate{}} {
		if got := AuthorizedKeyLine(k); got != nil {
			t.Fatalf("AuthorizedKeyLine(%#v) = %q, want nil", k, got)
		}
	}
}

func TestKnownHostsCALine(t *testing.T) {
	ca := newEd25519(t)
	cert := signRaw(t, ca, &ssh.Certificate{Key: newEd25519(t).PublicKey(), CertType: ssh.HostCert, ValidPrincipals: []string{"h"}})

	tests := []struct {
		name    string
		pattern string
		key     ssh.PublicKey
		valid   bool
	}{
		{"one host", "bastion.corp", ca.PublicKey(), true},
		{"pattern list and port", "bastion.corp,[bastion.corp]:2222,*.bastion.corp", ca.PublicKey(), true},
		{"empty pattern", "", ca.PublicKey(), false},
		{"space would add a field", "a b", ca.PublicKey(), false},
		{"newline would add a line", "a\n@cert-authority *", ca.PublicKey(), false},
		{"nil CA", "bastion.corp", nil, false},
		{"certificate as CA", "bastion.corp", cert, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := KnownHostsCALine(tt.pattern, tt.key)
			if !tt.valid {
				if line != "" {
					t.Fatalf("KnownHostsCALine = %q, want empty for invalid input", line)
				}
				return
			}
			if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
				t.Fatalf("KnownHostsCALine = %q, want one line ending in newline", line)
			}
			marker, hosts, key, _, rest, err := ssh.ParseKnownHosts([]byte(line))
			if err != nil || len(rest) != 0 {
				t.Fatalf("ParseKnownHosts(%q): %v (rest %q)", line, err, rest)
			}
			if marker != "cert-authority" || strings.Join(hosts, ",") != tt.pattern || !sameKey(key, tt.key) {
				t.Fatalf("ParseKnownHosts(%q) = marker %q hosts %q, want cert-authority %q with the CA key", line, marker, hosts, tt.pattern)
			}
		})
	}
}
