package certs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidateACME(t *testing.T) {
	paths := func(c Config) []string {
		var out []string
		for _, e := range c.Validate(true) {
			out = append(out, e.Path)
		}
		slices.Sort(out)
		return out
	}
	ok := Config{Mode: ModeACME, Email: "a@example.org", CA: "https://ca.test/dir", Names: []string{"a.test", "*.b.test"}, Challenges: []string{ChallengeHTTP01}, Profile: "shortlived"}
	if got := paths(ok); len(got) != 0 {
		t.Fatalf("valid acme config: errors at %v", got)
	}
	bad := Config{Mode: ModeACME, Email: "nobody", CA: "http://ca.test/dir", Certs: []CertFiles{{CertFile: "c", KeyFile: "k"}}, Challenges: []string{"dns-01"}}
	if got, want := paths(bad), []string{"ca", "certs", "challenges[0]", "email"}; !slices.Equal(got, want) {
		t.Fatalf("errors at %v, want %v", got, want)
	}
	stray := Config{Mode: ModeInternal, Email: "a@b.c", CA: "https://x/", CARoot: "r", Storage: "s", Challenges: []string{"http-01"}, Profile: "p"}
	if got, want := paths(stray), []string{"ca", "ca_root", "challenges", "email", "profile", "storage"}; !slices.Equal(got, want) {
		t.Fatalf("acme keys outside mode acme: errors at %v, want %v", got, want)
	}
}

func TestNewACMERefusesWhatCannotWork(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		opts Options
		want string
	}{
		{Config{Mode: ModeACME}, Options{Dir: dir}, "no challenge can be answered"},
		{Config{Mode: ModeACME, Challenges: []string{ChallengeHTTP01}}, Options{Dir: dir, TLSAddr: "127.0.0.1:8443"}, "no challenge can be answered"},
		{Config{Mode: ModeACME}, Options{Dir: dir, TLSAddr: "127.0.0.1:0"}, "need a fixed port"},
		{Config{Mode: ModeACME, CARoot: notPEM}, Options{Dir: dir, TLSAddr: "127.0.0.1:8443"}, "no PEM certificate"},
		{Config{Mode: ModeACME, CARoot: filepath.Join(dir, "missing.pem")}, Options{Dir: dir, TLSAddr: "127.0.0.1:8443"}, "no such file"},
		{Config{Mode: ModeACME}, Options{TLSAddr: "127.0.0.1:8443"}, "no storage folder"},
	} {
		src, err := New(c.cfg, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			if src != nil {
				src.Close()
			}
			t.Errorf("New(%+v, %+v): %v, want an error saying %q", c.cfg, c.opts, err, c.want)
		}
	}
	// A valid source answers http-01 only when it offers it, and closes.
	src, err := New(Config{Mode: ModeACME, Names: []string{"a.test"}, Challenges: []string{ChallengeTLSALPN01}}, Options{Dir: dir, HTTPAddr: "127.0.0.1:8080", TLSAddr: "127.0.0.1:8443"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.HTTPChallenges() || !slices.Contains(src.TLSConfig("h2").NextProtos, acmeTLS1) {
		t.Fatalf("tls-alpn-01 only: HTTPChallenges %v, NextProtos %v", src.HTTPChallenges(), src.TLSConfig("h2").NextProtos)
	}
	if st := src.Status(); len(st) != 1 || st[0].Name != "a.test" || !st[0].NotAfter.IsZero() {
		t.Fatalf("status before any certificate: %+v", st)
	}
	if fi, err := os.Stat(filepath.Join(dir, "acme")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("storage folder: %v %v, want mode 0700", fi, err)
	}
}

func TestACMEDecidesOnlyListedNames(t *testing.T) {
	a := &acmeSource{names: namesOf([]string{"app.test", "*.wild.test"}, nil)}
	for name, want := range map[string]bool{
		"app.test": true, "www.wild.test": true,
		"wild.test": false, "a.b.wild.test": false, "other.test": false, "xapp.test": false, "evilwild.test": false,
	} {
		if got := a.decide(t.Context(), name) == nil; got != want {
			t.Errorf("decide(%q) allowed %v, want %v", name, got, want)
		}
	}
}
