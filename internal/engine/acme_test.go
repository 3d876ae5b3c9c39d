package engine

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/certs"
)

// TestACMESourceFollowsReloads: the engine owns the reverse door's ACME source
// (certmagic's cache and maintenance): a reload with the same settings keeps it,
// one that changes them replaces it, one without ACME drops it. Building a source
// contacts no CA (issuance waits for a handshake), so none runs here.
func TestACMESourceFollowsReloads(t *testing.T) {
	dir := t.TempDir()
	plain, secure := freeAddr(t), freeAddr(t)
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
		if len(e.shared.sources) > 1 {
			t.Fatalf("%d ACME sources, want at most one", len(e.shared.sources))
		}
		for _, src := range e.shared.sources {
			return src
		}
		return nil
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

// TestACMESourceSharedByDoors: the reverse door and the forward TLS door
// with the same ACME settings share one source (one certmagic cache over one
// storage folder), whose challenges are answered on the reverse door's plain
// listener and on both TLS doors; with other settings each door has its own,
// and two sources listing the same name are refused (both would order and
// renew it in the same storage).
func TestACMESourceSharedByDoors(t *testing.T) {
	dir := t.TempDir()
	rPlain, rTLS, fPlain, fTLS := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	policy := func(reverseTLS, forwardTLS string) string {
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
forward:
  listen: ["%s"]
  tls_listen: ["%s"]
  tls: %s
`, rPlain, rTLS, reverseTLS, fPlain, fTLS, forwardTLS)
	}
	same := `{mode: acme, email: a@x.test, ca: "https://127.0.0.1:9/dir", names: [a.test, proxy.a.test]}`
	sources := func(e *Engine) int {
		e.shared.mu.Lock()
		defer e.shared.mu.Unlock()
		return len(e.shared.sources)
	}
	e := startOps(t, dir, policy(same, same), nil)
	st := e.cur.Load()
	if sources(e) != 1 || st.acme["reverse"] == nil || st.acme["reverse"] != st.acme["forward"] || st.reverseCerts != st.acme["reverse"] {
		t.Fatalf("same settings: %d sources, reverse %p forward %p, want one shared", sources(e), st.acme["reverse"], st.acme["forward"])
	}
	if st.reversePlain == nil || st.forwardPlain != nil {
		t.Fatal("http-01: want the reverse plain listener to answer and the forward one (not asked for http-01) not")
	}
	if got := e.certStatus(); len(got) != 2 || got[0].Name != "a.test" || got[1].Name != "proxy.a.test" {
		t.Fatalf("status %+v, want a.test and proxy.a.test once each", got)
	}
	shared := st.acme["reverse"]
	reload := func(r, f string) error {
		writeFile(t, filepath.Join(dir, "policy.yaml"), policy(r, f))
		return e.Reload()
	}
	// Other settings, other names: two sources; the shared one is kept by
	// the reverse door (its settings did not change).
	other := `{mode: acme, email: b@x.test, ca: "https://127.0.0.1:9/dir", names: [proxy.b.test], challenges: [http-01, tls-alpn-01]}`
	if err := reload(same, other); err != nil {
		t.Fatal(err)
	}
	st = e.cur.Load()
	if sources(e) != 2 || st.acme["reverse"] != shared || st.acme["forward"] == shared || st.acme["forward"] == nil || st.forwardPlain == nil {
		t.Fatalf("other settings: %d sources, reverse kept %v, forward own %v, forward http-01 %v", sources(e), st.acme["reverse"] == shared, st.acme["forward"] != shared, st.forwardPlain != nil)
	}
	// The same name under other settings: refused, the running sources stay.
	if err := reload(same, `{mode: acme, email: c@x.test, ca: "https://127.0.0.1:9/dir", names: [a.test]}`); err == nil ||
		!strings.Contains(err.Error(), "forward.tls.names: a.test is also listed by reverse.tls") {
		t.Fatalf("overlapping names: %v", err)
	}
	if sources(e) != 2 || e.cur.Load() != st {
		t.Fatal("a refused policy changed the ACME sources")
	}
	// No ACME: every source goes.
	if err := reload(`{mode: internal}`, `{mode: internal}`); err != nil {
		t.Fatal(err)
	}
	if sources(e) != 0 || e.cur.Load().acme != nil {
		t.Fatal("a policy without ACME kept ACME sources")
	}
}

// TestACMEOverlapWithRouteHosts: the reverse door's ACME names default to its
// routes' hosts when reverse.tls.names is empty; a forward TLS door with other
// ACME settings listing one of them is refused like one listing a name of
// reverse.tls.names (both sources would order and renew it in the same
// storage), at start, by a dry run (portcullis validate) and on reload, the
// error naming the file, line and field and the route's host it clashes with.
func TestACMEOverlapWithRouteHosts(t *testing.T) {
	dir := t.TempDir()
	rPlain, rTLS, fPlain, fTLS := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	policy := func(forwardNames string) string {
		return fmt.Sprintf(`reverse:
  listen: ["%s"]
  tls_listen: ["%s"]
  state_dir: state
  tls: {mode: acme, email: a@x.test, ca: "https://127.0.0.1:9/dir"}
  routes:
    - {name: www, host: [www.a.test], pool: p}
    - {name: shop, host: [shop.a.test, shop.b.test], pool: p}
pools:
  p:
    members: [{url: "http://127.0.0.1:9"}]
forward:
  listen: ["%s"]
  tls_listen: ["%s"]
  tls:
    mode: acme
    email: b@x.test
    ca: "https://127.0.0.1:9/dir"
    names: %s
`, rPlain, rTLS, fPlain, fTLS, forwardNames)
	}
	path := filepath.Join(dir, "policy.yaml")
	// The field the error points at: forward.tls.names, line 19, column 12 (its list).
	want := path + ":19:12: forward.tls.names: shop.b.test is also a name of reverse.tls, with other ACME settings " +
		"(reverse.tls.names is empty, so the reverse door's ACME names are its routes' hosts: reverse.routes[1].host[1])"
	overlapping := policy("[proxy.a.test, shop.b.test]")
	if got := strings.Split(overlapping, "\n")[18]; got != "    names: [proxy.a.test, shop.b.test]" {
		t.Fatalf("line 19 of the policy is %q", got)
	}

	// A dry run (what portcullis validate does) refuses it.
	writeFile(t, path, overlapping)
	if _, err := New(Options{PolicyPath: path, Logger: slog.New(slog.DiscardHandler), DryRun: true}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("dry run of overlapping names: %v\nwant %s", err, want)
	}
	// So does a start.
	if e, err := New(Options{PolicyPath: path, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard}); err == nil {
		e.Close()
		t.Fatal("a start with overlapping names was accepted")
	} else if !strings.Contains(err.Error(), want) {
		t.Fatalf("start with overlapping names: %v\nwant %s", err, want)
	}
	// Names of their own: two sources. Then a reload adding a route's host
	// to forward.tls.names is refused and the running sources stay.
	e := startOps(t, dir, policy("[proxy.a.test]"), nil)
	st := e.cur.Load()
	if st.acme["reverse"] == nil || st.acme["forward"] == nil || st.acme["reverse"] == st.acme["forward"] {
		t.Fatalf("other settings, other names: reverse %p forward %p, want a source each", st.acme["reverse"], st.acme["forward"])
	}
	writeFile(t, path, overlapping)
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reload with overlapping names: %v\nwant %s", err, want)
	}
	if e.cur.Load() != st {
		t.Fatal("a refused policy replaced the running one")
	}
}

// freeAddr returns a loopback address whose port is free now: ACME needs a
// fixed port in the policy.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFilesSourceKeptAcrossReloads: a files certificate source (which staples
// OCSP answers in the background) is the engine's like an ACME one: a reload
// with the same files keeps it (its staples with it), the reverse and forward
// doors naming the same files share it, new contents replace it, and a policy
// without it closes it.
func TestFilesSourceKeptAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.CreateCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	writeLeaf := func(name string) {
		t.Helper()
		leaf, err := ca.Sign(name, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := certs.WritePair(leaf, filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf.key")); err != nil {
			t.Fatal(err)
		}
	}
	writeLeaf("a.test")
	const files = `{certs: [{cert_file: leaf.pem, key_file: leaf.key}]}`
	policy := func(comment string) string {
		return fmt.Sprintf(`reverse:
  tls_listen: ["127.0.0.1:0"]
  tls: %s
  routes:
    - {name: all, pool: p}
pools:
  p:
    members: [{url: "http://127.0.0.1:9"}]
forward:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  tls: %s
# %s
`, files, files, comment)
	}
	live := func(e *Engine) []*certs.Source {
		e.shared.mu.Lock()
		defer e.shared.mu.Unlock()
		var out []*certs.Source
		for _, s := range e.shared.sources {
			out = append(out, s)
		}
		return out
	}
	e := startOps(t, dir, policy("1"), nil)
	first := live(e)
	if len(first) != 1 || e.cur.Load().reverseCerts != first[0] {
		t.Fatalf("%d files sources, want one shared by both doors and the reverse door's", len(first))
	}
	reload := func(p string) {
		t.Helper()
		writeFile(t, filepath.Join(dir, "policy.yaml"), p)
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload(policy("2"))
	if got := live(e); len(got) != 1 || got[0] != first[0] {
		t.Fatal("a reload with the same files replaced the source")
	}
	writeLeaf("b.test")
	reload(policy("3"))
	if got := live(e); len(got) != 1 || got[0] == first[0] || e.cur.Load().reverseCerts != got[0] {
		t.Fatal("a reload after the files changed kept the old source")
	}
	reload("forward:\n  listen: [\"127.0.0.1:0\"]\n")
	if got := live(e); len(got) != 0 {
		t.Fatalf("%d sources without TLS listeners, want none", len(got))
	}
}
