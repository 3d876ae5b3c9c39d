package forward

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/rules"
)

func TestProxyAuthentication(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "htpasswd")
	writeHtpasswd(t, pw, "alice", "s3cret")
	store, err := auth.Load(pw, "")
	if err != nil {
		t.Fatal(err)
	}
	origin := newRecordingOrigin(t)
	var mu sync.Mutex
	var users []string
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		mu.Lock()
		users = append(users, f.User)
		mu.Unlock()
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
	lim := auth.NewLimiter(auth.LimiterConfig{MaxFailures: 2, Window: time.Minute, Lockout: time.Minute}, time.Now)
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "pac") })
	tp := startProxy(t, Options{Policy: policy, Auth: store, AuthLimiter: lim, AuthRealm: "School", Local: local})
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	get := func(authz string) *http.Response {
		raw := "GET " + origin.URL + "/ HTTP/1.1\r\nHost: x\r\n"
		if authz != "" {
			raw += "Proxy-Authorization: " + authz + "\r\n"
		}
		resp, _, _ := tp.rawRequest(t, raw+"\r\n")
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp
	}
	if resp := get(""); resp.StatusCode != 407 || !strings.Contains(resp.Header.Get("Proxy-Authenticate"), `realm="School"`) {
		t.Fatalf("no credentials: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := get(basic("alice", "s3cret")); resp.StatusCode != 200 || origin.seen().Get("Proxy-Authorization") != "" {
		t.Fatalf("good credentials: %d, origin saw %v", resp.StatusCode, origin.seen())
	}
	mu.Lock()
	if len(users) != 1 || users[0] != "alice" {
		t.Fatalf("policy saw users %q", users)
	}
	mu.Unlock()
	// The PAC file (a local request) needs no credentials.
	if resp, _, _ := tp.rawRequest(t, "GET /proxy.pac HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("local request: %d", resp.StatusCode)
	}
	// CONNECT authenticates too.
	resp, _, _ := tp.rawRequest(t, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	if resp.StatusCode != 407 {
		t.Fatalf("CONNECT without credentials: %d", resp.StatusCode)
	}
	for range 2 {
		if resp := get(basic("alice", "wrong")); resp.StatusCode != 407 {
			t.Fatalf("bad credentials: %d", resp.StatusCode)
		}
	}
	if resp := get(basic("alice", "s3cret")); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after lockout: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestInspectedRequestsCarryTheTunnelIdentity(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "htpasswd")
	writeHtpasswd(t, pw, "bob", "pw")
	store, err := auth.Load(pw, "")
	if err != nil {
		t.Fatal(err)
	}
	env := newInspectEnv(t, originHandler())
	var mu sync.Mutex
	var seen []string
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		mu.Lock()
		seen = append(seen, f.Method+":"+f.User)
		mu.Unlock()
		return inspectPolicy(f)
	})
	opts := env.proxyOpts(t, policy, nil)
	opts.Auth = store
	tp := startProxy(t, opts)
	u := *tp.url
	u.User = url.UserPassword("bob", "pw")
	tr := &http.Transport{Proxy: http.ProxyURL(&u), TLSClientConfig: env.client(t, tp, false).Transport.(*http.Transport).TLSClientConfig}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(env.url("example.com", "/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != 200 || strings.Join(seen, ",") != "CONNECT:bob,CONNECT:bob,GET:bob" {
		t.Fatalf("status %d, policy saw %q", resp.StatusCode, seen)
	}
}

// writeHtpasswd writes a one-user htpasswd file with a cheap bcrypt cost (the
// production cost makes each check take seconds under -race).
func writeHtpasswd(t *testing.T, path, user, pass string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
