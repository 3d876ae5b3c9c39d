package policies_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/engine"
	"github.com/portcullis/portcullis/policies"
	"github.com/portcullis/portcullis/rules"
)

func load(t *testing.T, path string) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Options{PolicyPath: path, DefaultPolicy: policies.Default, Logger: slog.New(slog.DiscardHandler), DryRun: true})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestEveryPolicyCompiles loads every example policy the way `portcullis run` does.
func TestEveryPolicyCompiles(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no policies: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) { load(t, f) })
	}
}

func TestEmbeddedDefaultIsDefaultYAML(t *testing.T) {
	b, err := os.ReadFile("default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, policies.Default) {
		t.Fatal("the embedded default differs from policies/default.yaml")
	}
}

// TestSchoolVerdicts is the school policy's golden verdict table.
func TestSchoolVerdicts(t *testing.T) {
	e := load(t, "school.yaml")
	paris, _ := time.LoadLocation("Europe/Paris")
	classTime := time.Date(2026, 11, 23, 10, 0, 0, 0, paris) // a Monday
	evening := time.Date(2026, 11, 23, 18, 0, 0, 0, paris)
	holiday := time.Date(2026, 12, 23, 10, 0, 0, 0, paris)
	student := netip.MustParseAddr("10.1.4.2")
	staff := netip.MustParseAddr("10.2.0.9")
	cases := []struct {
		name           string
		f              rules.Facts
		action         rules.Action
		rule, category string
	}{
		{"ordinary site", rules.Facts{Host: "en.wikipedia.org", Path: "/", Client: student, Time: classTime}, rules.ActionAllow, "default", ""},
		{"adult subdomain", rules.Facts{Host: "www.adult-example.test", Path: "/", Client: staff, Time: evening}, rules.ActionBlock, "adult", "adult"},
		{"adult url prefix", rules.Facts{Host: "example.test", Path: "/adult-section/page", Client: staff, Time: evening}, rules.ActionBlock, "adult", "adult"},
		{"same host other path", rules.Facts{Host: "example.test", Path: "/news", Client: staff, Time: evening}, rules.ActionAllow, "default", ""},
		{"gambling over CONNECT", rules.Facts{Host: "poker-stars.test", Method: "CONNECT", Port: 443, Client: student, Time: evening}, rules.ActionBlock, "gambling", "gambling"},
		{"local list", rules.Facts{Host: "games-at-school.test", Client: staff, Time: evening}, rules.ActionBlock, "local-blocklist", "local"},
		{"social, student, class", rules.Facts{Host: "www.instagram.com", Client: student, Time: classTime}, rules.ActionBlock, "social-during-school-hours", "social_networks"},
		{"tiktok glob, student, class", rules.Facts{Host: "v16.tiktok.co.uk", Client: student, Time: classTime}, rules.ActionBlock, "social-during-school-hours", ""},
		{"social, student, evening", rules.Facts{Host: "www.instagram.com", Client: student, Time: evening}, rules.ActionAllow, "default", ""},
		{"social, student, holiday", rules.Facts{Host: "www.instagram.com", Client: student, Time: holiday}, rules.ActionAllow, "default", ""},
		{"social, staff, class", rules.Facts{Host: "www.instagram.com", Client: staff, Time: classTime}, rules.ActionAllow, "default", ""},
		{"ssh tunnel", rules.Facts{Host: "example.org", Method: "CONNECT", Port: 22, Client: staff, Time: evening}, rules.ActionBlock, "ssh-and-friends", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f.Door = rules.DoorForward
			v, _ := e.Explain(&c.f)
			if v.Action != c.action || v.Rule != c.rule || v.Category != c.category {
				t.Fatalf("got %s/%s/%q, want %s/%s/%q", v.Action, v.Rule, v.Category, c.action, c.rule, c.category)
			}
		})
	}
}
