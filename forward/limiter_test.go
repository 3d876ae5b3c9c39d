package forward

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
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

// signInProxy starts a forward door with sign-in for users victim, mallory and
// student (password: the user's name reversed) and a failed sign-in limit of 5,
// and an origin it may reach. The bcrypt cost is real enough (8) that parallel
// checks overlap.
func signInProxy(t *testing.T) (*testProxy, string) {
	t.Helper()
	return signInProxyWith(t, auth.LimiterConfig{MaxFailures: 5, Window: time.Hour, Lockout: time.Hour})
}

func signInProxyWith(t *testing.T, cfg auth.LimiterConfig) (*testProxy, string) {
	t.Helper()
	var lines strings.Builder
	for _, u := range []string{"victim", "mallory", "student"} {
		h, err := bcrypt.GenerateFromPassword([]byte(reverse(u)), 8)
		if err != nil {
			t.Fatal(err)
		}
		lines.WriteString(u + ":" + string(h) + "\n")
	}
	pw := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(pw, []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := auth.Load(pw, "")
	if err != nil {
		t.Fatal(err)
	}
	origin := newRecordingOrigin(t)
	policy := rules.EvaluatorFunc(func(*rules.Facts) rules.Verdict {
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
	lim := auth.NewLimiter(cfg, nil)
	return startProxy(t, Options{Policy: policy, Auth: store, AuthLimiter: lim}), origin.URL
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// signInRequest is a proxy request to origin with Basic credentials.
func signInRequest(origin, user, pass string) string {
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return "GET " + origin + "/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic " + cred + "\r\n\r\n"
}

// sendRaw writes raw on c and returns the status of the response (0 on error).
func sendRaw(c net.Conn, br *bufio.Reader, raw string) int {
	if _, err := io.WriteString(c, raw); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func signIn(t *testing.T, tp *testProxy, origin, user, pass string) int {
	t.Helper()
	c, br := tp.dialRaw(t)
	defer c.Close()
	return sendRaw(c, br, signInRequest(origin, user, pass))
}

// TestSignInLimitHoldsForParallelGuesses: 100 wrong guesses sent at once, each on
// its own connection, get at most the limit's 5 password checks (407); the
// others are refused unchecked (429). On bc21481 the limiter counted failures
// only once checked, and 41 of 100 were checked.
func TestSignInLimitHoldsForParallelGuesses(t *testing.T) {
	tp, origin := signInProxy(t)
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	conns := make([]conn, 100)
	for i := range conns {
		conns[i].c, conns[i].br = tp.dialRaw(t)
	}
	start := make(chan struct{})
	statuses := make([]int, len(conns))
	var wg sync.WaitGroup
	for i, cn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = sendRaw(cn.c, cn.br, signInRequest(origin, "victim", "guess"))
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[407] > 5 || count[407]+count[429] != 100 {
		t.Fatalf("100 parallel wrong guesses, limit 5: %d checked (407), %d refused (429), statuses %v", count[407], count[429], count)
	}
	if got := signIn(t, tp, origin, "victim", "mitciv"); got != 429 {
		t.Fatalf("the guessed user's right password after the lockout: %d, want 429", got)
	}
}

// TestSignInOwnSuccessDoesNotResetTheLimit is the attack of issue 16 item 6: a
// user with an account signs in as themselves between guesses at another user's
// password. On bc21481 each success reset the address's count and the guesses
// never stopped.
func TestSignInOwnSuccessDoesNotResetTheLimit(t *testing.T) {
	tp, origin := signInProxy(t)
	checked := 0
	for round := range 5 {
		for range 4 {
			switch got := signIn(t, tp, origin, "victim", "guess"); got {
			case 407:
				checked++
			case 429:
			default:
				t.Fatalf("round %d: a wrong guess got %d", round, got)
			}
		}
		if got := signIn(t, tp, origin, "mallory", "yrollam"); got != 200 {
			t.Fatalf("round %d: the attacker's own sign-in got %d", round, got)
		}
	}
	if checked > 5 {
		t.Fatalf("%d of 20 guesses checked, limit 5", checked)
	}
}

// TestSignInNATNeighbourStillSignsIn: while one user's password is being guessed
// from an address (a school's NAT), another user behind the same address signs
// in with the right password. On bc21481 the whole address was locked out.
func TestSignInNATNeighbourStillSignsIn(t *testing.T) {
	tp, origin := signInProxy(t)
	for range 6 {
		signIn(t, tp, origin, "victim", "guess")
	}
	if got := signIn(t, tp, origin, "victim", "guess"); got != 429 {
		t.Fatalf("the guessed user is not locked out: %d", got)
	}
	// The guessing goes on while the neighbour signs in.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	c, br := tp.dialRaw(t)
	go func() {
		defer wg.Done()
		defer c.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if sendRaw(c, br, signInRequest(origin, "victim", "guess")) == 0 {
				return
			}
		}
	}()
	got := signIn(t, tp, origin, "student", "tneduts")
	close(stop)
	wg.Wait()
	if got != 200 {
		t.Fatalf("a neighbour behind the same address with the right password: %d, want 200", got)
	}
}

// TestSignInSlowedAddressKeepsSignedInUsers: password spraying (one guess per
// user) slows the address, so a new sign-in from it waits; a user already
// signed in behind the same address (credentials checked before, no bcrypt)
// keeps browsing.
func TestSignInSlowedAddressKeepsSignedInUsers(t *testing.T) {
	tp, origin := signInProxyWith(t, auth.LimiterConfig{MaxFailures: 5, MaxAddressFailures: 3, SlowInterval: time.Hour, Window: time.Hour, Lockout: time.Hour})
	if got := signIn(t, tp, origin, "student", "tneduts"); got != 200 {
		t.Fatalf("first sign-in: %d", got)
	}
	for _, u := range []string{"victim", "mallory", "nobody"} {
		if got := signIn(t, tp, origin, u, "Summer2026!"); got != 407 {
			t.Fatalf("spraying %s: %d, want 407", u, got)
		}
	}
	if got := signIn(t, tp, origin, "teacher", "guess"); got != 429 {
		t.Fatalf("a new sign-in from a slowed address: %d, want 429", got)
	}
	for range 3 {
		if got := signIn(t, tp, origin, "student", "tneduts"); got != 200 {
			t.Fatalf("a signed-in user behind the slowed address: %d, want 200", got)
		}
	}
}
