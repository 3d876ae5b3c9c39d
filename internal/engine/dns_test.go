package engine

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// fakeUpstream is a DNS upstream on loopback answering every A query with answer
// and counting the queries.
func fakeUpstream(t *testing.T, answer string) (addr string, queries *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	queries = new(atomic.Int64)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A " + answer)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), queries
}

func TestDNSDoorThroughEngine(t *testing.T) {
	up, queries := fakeUpstream(t, "192.0.2.1")
	dir := t.TempDir()
	writeFile(t, dir+"/blocked.txt", "ads.example\n")
	e := runEngine(t, fmt.Sprintf(`
resolver:
  upstreams: ["udp://%s"]
lists:
  ads: {format: domains, path: %s/blocked.txt}
rules:
  - {name: no-ads, list: [ads], action: block}
dns:
  listen: ["127.0.0.1:0"]
`, up, dir))
	server := e.Addrs()["dns"][0].String()
	ask := func(name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := new(dns.Client).Exchange(m, server)
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return r
	}
	if r := ask("tracker.ads.example"); r.Rcode != dns.RcodeNameError {
		t.Fatalf("blocked name: rcode %s", dns.RcodeToString[r.Rcode])
	}
	r := ask("www.example.org")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("forwarded answer: %v", r)
	}
	ask("www.example.org") // from the resolver's cache
	if n := queries.Load(); n != 1 {
		t.Fatalf("upstream saw %d queries, want 1 (second answered from cache)", n)
	}
}
