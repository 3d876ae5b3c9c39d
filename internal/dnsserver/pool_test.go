package dnsserver

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/internal/pool"
)

// poolHealth adapts real pools to Health, as the engine does.
type poolHealth map[string]*pool.Pool

func (h poolHealth) Healthy(name string) bool {
	p, ok := h[name]
	return ok && p.Healthy()
}

// TestGSLBFollowsPoolHealth stops a site's members and sees its address leave the
// answers after the pool's health checks, and come back when they return.
func TestGSLBFollowsPoolHealth(t *testing.T) {
	newPool := func(name string) (*pool.Pool, *httptest.Server) {
		member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(member.Close)
		p, err := pool.New(name, pool.Config{
			Members: []pool.MemberConfig{{URL: member.URL}},
			Health:  pool.HealthConfig{Path: "/health", Interval: time.Hour, Timeout: time.Second, Rise: 1, Fall: 1},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p, member
	}
	eu, euMember := newPool("pool-eu")
	us, _ := newPool("pool-us")
	_, addr := startServer(t, Options{Config: gslbConfig(), Health: poolHealth{"pool-eu": eu, "pool-us": us}})
	ask := func() []string {
		return answers(askECS(t, addr, teacher, "www.example.test", dns.TypeA, netip.MustParsePrefix("10.1.9.0/24")))
	}
	eu.CheckNow(t.Context())
	if got := ask(); !slices.Equal(got, []string{"198.51.100.1"}) {
		t.Fatalf("eu healthy: %v", got)
	}
	// Stop the eu member: its listener closes, the next check fails.
	euMember.Close()
	eu.CheckNow(t.Context())
	if got := ask(); !slices.Equal(got, []string{"203.0.113.1"}) {
		t.Fatalf("eu members stopped: %v, want the us site", got)
	}
	// Start the member again on its address: the site returns.
	ln, err := net.Listen("tcp", euMember.Listener.Addr().String())
	if err != nil {
		t.Fatalf("restarting the member: %v", err)
	}
	restarted := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}}
	restarted.Start()
	defer restarted.Close()
	eu.CheckNow(t.Context())
	if got := ask(); !slices.Equal(got, []string{"198.51.100.1"}) {
		t.Fatalf("eu members back: %v", got)
	}
}
