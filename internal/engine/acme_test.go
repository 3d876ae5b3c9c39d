package engine

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/internal/certs"
)

// TestACMESourceFollowsReloads: the engine owns the reverse door's ACME source
// (certmagic's cache and maintenance): a reload with the same settings keeps it,
// one that changes them replaces it, one without ACME drops it. Building a source
// contacts no CA (issuance waits for a handshake), so none runs here.
func TestACMESourceFollowsReloads(t *testing.T) {
	dir := t.TempDir()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	plain, secure := free(), free()
	policy := func(tls string) string {
		return fmt.Sprintf(`reverse:
  listen: ["%s"]
  tls_listen: ["%s"]
  state_dir: state
  tls: %s
  routes:
    - {name: all, pool: p}
pools:
  p:
    members: [{url: "http://127.0.0.1:9"}]
`, plain, secure, tls)
	}
	acme := func(email string) string {
		return fmt.Sprintf(`{mode: acme, email: %s, ca: "https://127.0.0.1:9/dir", names: [a.test]}`, email)
	}
	live := func(e *Engine) *certs.Source {
		e.shared.mu.Lock()
		defer e.shared.mu.Unlock()
		return e.shared.acme
	}
	e := startOps(t, dir, policy(acme("a@x.test")), nil)
	first := live(e)
	if first == nil || e.cur.Load().reverseCerts != first || e.cur.Load().reversePlain == nil {
		t.Fatal("the ACME source is not the engine's and the state's, or http-01 is not answered on the plain listener")
	}
	if st := e.certStatus(); len(st) != 1 || st[0].Name != "a.test" || !st[0].NotAfter.IsZero() {
		t.Fatalf("status %+v, want a.test without a certificate yet", st)
	}
	reload := func(tls string) {
		t.Helper()
		writeFile(t, filepath.Join(dir, "policy.yaml"), policy(tls)+"# "+tls+"\n")
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload(acme("a@x.test"))
	if live(e) != first {
		t.Fatal("a reload with the same ACME settings replaced the source")
	}
	reload(acme("b@x.test"))
	second := live(e)
	if second == nil || second == first || e.cur.Load().reverseCerts != second {
		t.Fatal("a reload that changes the ACME settings kept the old source")
	}
	// A reload that fails keeps the running source.
	writeFile(t, filepath.Join(dir, "policy.yaml"), policy(`{mode: acme, email: c@x.test, ca_root: missing.pem}`))
	if err := e.Reload(); err == nil {
		t.Fatal("a missing ca_root was accepted")
	}
	if live(e) != second || e.cur.Load().reverseCerts != second {
		t.Fatal("a failed reload changed the ACME source")
	}
	reload(`{mode: internal}`)
	if live(e) != nil || e.cur.Load().reversePlain != nil {
		t.Fatal("a policy without ACME kept the ACME source")
	}
}
