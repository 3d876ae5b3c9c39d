package forward

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
)

// TestRequestURLAsParsed checks that the access log's URL of an absolute-form
// request is what url.URL.String gives for the parsed target (credentials
// removed), whether requestURL takes the request line's spelling as it is
// or builds the string: over hand-picked targets and random ones made of the
// bytes that change how a URL prints.
func TestRequestURLAsParsed(t *testing.T) {
	targets := []string{
		"http://127.0.0.1:18080/small",
		"http://example.com",
		"http://example.com/",
		"http://example.com?",
		"http://example.com/?",
		"http://example.com/a/b?q=1&r=2",
		"https://Example.COM:8443/x?y",
		"http://[::1]:8080/p",
		"http://[fe80::1%25eth0]/p",
		"HTTP://example.com/p",
		"http://user:pw@example.com/p",
		"http://example.com/a%2Fb",
		"http://example.com/a%41",
		"http://example.com/a b",
		"http://example.com/a#frag",
		"http://example.com/p?a#frag",
		"http://example.com/é",
		"http://example.com/a;b=c,d",
		"http://example.com//double",
		"http://exa%6Dple.com/",
		"http://example.com/p?q=%zz",
	}
	alphabet := []byte("aZ09-._~/:?#%@[];=&+ !$'()*,\"<>\\^`{|}\x7f\xc3\xa9")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 4000 {
		n := rng.IntN(12)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		targets = append(targets, "http://h.example/"+string(b), "http://h"+string(b)+"/p", "https://h.example/p?"+string(b))
	}
	fast := 0
	for _, target := range targets {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			continue // the connection engine answers 400
		}
		want := *u
		want.User = nil
		r := &http.Request{Method: http.MethodGet, URL: u, RequestURI: target}
		if got := requestURL(r); got != want.String() {
			t.Errorf("target %q: requestURL = %q, url.String = %q", target, got, want.String())
		}
		if spelledAsURL(target, u) {
			fast++
		}
	}
	if u, _ := url.ParseRequestURI("http://127.0.0.1:18080/small?a=b"); !spelledAsURL(u.String(), u) {
		t.Error("a plain absolute URL is built again instead of taken as the client spelled it")
	}
	t.Logf("%d of %d targets taken as spelled", fast, len(targets))
}
