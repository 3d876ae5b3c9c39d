package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoolsRetiredOnlyAfterASuccessfulReload: a reload that drops a pool but fails
// later in the build (here: an htpasswd file with a hash Portcullis refuses, found
// only when the forward door is built) leaves the old policy's pools running; a
// good reload stops the dropped one.
func TestPoolsRetiredOnlyAfterASuccessfulReload(t *testing.T) {
	a := newOrigin(t, "a", nil)
	b := newOrigin(t, "b", nil)
	both := fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: a, host: [a.test], pool: a}, {name: b, host: [b.test], pool: b}]
pools:
  a: {members: [{url: %q}]}
  b: {members: [{url: %q}]}
`, a.URL, b.URL)
	onlyA := fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: a, host: [a.test], pool: a}]
pools:
  a: {members: [{url: %q}]}
`, a.URL)
	e := runEngine(t, both)
	policy := e.opts.PolicyPath
	names := func() []string {
		var out []string
		for _, p := range e.shared.poolStatus() {
			out = append(out, p.Name)
		}
		return out
	}
	md5 := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(md5, []byte("alice:$apr1$abc$defghijk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte(onlyA+"forward: {listen: [\"127.0.0.1:0\"], auth: {htpasswd_file: "+md5+"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.Reload()
	if err == nil || !strings.Contains(err.Error(), "forward.auth.htpasswd_file: ") {
		t.Fatalf("reload with an unusable htpasswd file: %v", err)
	}
	t.Logf("failed reload: %v", err)
	if got := names(); len(got) != 2 {
		t.Fatalf("after a failed reload the pools are %v, want a and b still running", got)
	}
	if err := os.WriteFile(policy, []byte(onlyA), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after a good reload the pools are %v, want [a]", got)
	}
}
