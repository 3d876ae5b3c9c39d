package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis/portcullis/internal/certs"
)

// flipDNS is a DNS server on loopback whose answer for every A query alternates
// between first and second, with TTL 0: a rebinding attacker's name server.
func flipDNS(t *testing.T, first, second string) (addr string, queries *atomic.Int64) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	queries = &atomic.Int64{}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			ip := first
			if queries.Add(1)%2 == 0 {
				ip = second
			}
			rr, _ := dns.NewRR(fmt.Sprintf("%s 0 IN A %s", r.Question[0].Name, ip))
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.ActivateAndServe() }()
	t.Cleanup(func() { srv.Shutdown(); wg.Wait() })
	return pc.LocalAddr().String(), queries
}

// TestDNSRebindingBetweenCheckAndDial: a name whose answer flips between an allowed
// address (127.0.0.2, the only egress allowance) and a refused one (127.0.0.1, where
// the target listens) never leads the proxy to the refused one: it dials the address
// it checked, whatever the next answer says.
func TestDNSRebindingBetweenCheckAndDial(t *testing.T) {
	o := startOrigin(t, nil) // on 127.0.0.1: must stay unreachable
	_, port, _ := net.SplitHostPort(o.addr())
	dnsAddr, queries := flipDNS(t, "127.0.0.2", "127.0.0.1")
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s]
  dial_timeout: 1s
resolver:
  upstreams: ["udp://%s"]
  cache: {max_entries: -1}
  egress: {allow: ["127.0.0.2/32"]}
`, port, dnsAddr), nil)
	client := p.client(t)
	for i := range 8 {
		resp, err := client.Get(fmt.Sprintf("http://rebind.test:%s/r%d", port, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("request %d reached a server through the flipping name", i)
		}
		connect(t, p.fwd(), "rebind.test:"+port)
	}
	if queries.Load() < 4 {
		t.Fatalf("only %d DNS queries: the answers did not flip", queries.Load())
	}
	if n := o.connCount(); n != 0 {
		t.Fatalf("the proxy connected %d times to the rebound address", n)
	}
}

// TestCAKeyMode0600: the inspection CA's private key is written readable by its
// owner only.
func TestCAKeyMode0600(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ca.key")
	if _, err := certs.CreateCA(filepath.Join(dir, "ca.pem"), key, certs.InspectionCAName); err != nil {
		t.Fatal(err)
	}
	st, err := statMode(key)
	if err != nil {
		t.Fatal(err)
	}
	if st != 0o600 {
		t.Fatalf("CA key mode %o, want 600", st)
	}
}
