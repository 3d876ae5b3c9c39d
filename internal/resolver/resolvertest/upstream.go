// Package resolvertest provides a counting authoritative DNS server on loopback for
// tests of the resolver and the DNS server: a zone built from RR strings, NXDOMAIN
// with an SOA, SERVFAIL, truncation over UDP, a DoT listener with a generated
// certificate, and a gate to hold answers back.
package resolvertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Upstream is an authoritative test server. Configure it before Start; the zone
// must not change while it serves.
type Upstream struct {
	// Addr is "127.0.0.1:PORT", the same port for UDP and TCP.
	Addr string
	// TLSAddr is the DoT listener's address after StartTLS.
	TLSAddr string

	rrs      map[string][]dns.RR // "name.|TYPE" → records
	names    map[string]bool     // every owner name
	nxdomain map[string]bool
	servfail map[string]bool
	truncate map[string]bool
	silent   []string // zones whose names are never answered
	gates    map[string]chan struct{}
	arrived  chan string
	soa      *dns.SOA
	mu       sync.Mutex
	counts   map[string]int // "name.|TYPE|net" → queries
	total    int
	servers  []*dns.Server
}

// New returns an empty upstream whose negative answers carry an SOA with the given
// TTL and MINIMUM.
func New(soaTTL, soaMinimum uint32) *Upstream {
	return &Upstream{
		rrs: map[string][]dns.RR{}, names: map[string]bool{}, nxdomain: map[string]bool{},
		servfail: map[string]bool{}, truncate: map[string]bool{}, gates: map[string]chan struct{}{},
		arrived: make(chan string, 64), counts: map[string]int{},
		soa: &dns.SOA{
			Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: soaTTL},
			Ns:  "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400,
			Minttl: soaMinimum,
		},
	}
}

// Add adds records in zone-file syntax ("a.test. 300 IN A 192.0.2.1").
func (u *Upstream) Add(t testing.TB, records ...string) *Upstream {
	t.Helper()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("resolvertest: %q: %v", s, err)
		}
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		k := h.Name + "|" + dns.TypeToString[h.Rrtype]
		u.rrs[k] = append(u.rrs[k], rr)
		u.names[h.Name] = true
	}
	return u
}

// NXDomain makes name answer NXDOMAIN (with the SOA unless withSOA is false).
func (u *Upstream) NXDomain(name string, withSOA bool) *Upstream {
	u.nxdomain[dns.Fqdn(name)] = withSOA
	return u
}

// ServFail makes name answer SERVFAIL.
func (u *Upstream) ServFail(name string) *Upstream {
	u.servfail[dns.Fqdn(name)] = true
	return u
}

// Truncate makes UDP answers for name empty with the TC bit (TCP answers in full).
func (u *Upstream) Truncate(name string) *Upstream {
	u.truncate[dns.Fqdn(name)] = true
	return u
}

// Silence makes every name in zone (zone itself and its subdomains) go
// unanswered, over every network: the slowest upstream, whose clients time out.
// The queries are still counted.
func (u *Upstream) Silence(zone string) *Upstream {
	u.silent = append(u.silent, dns.CanonicalName(zone))
	return u
}

// Gate holds answers for name until the returned function is called; each query
// for name is reported on Arrived first.
func (u *Upstream) Gate(name string) (release func()) {
	ch := make(chan struct{})
	u.gates[dns.Fqdn(name)] = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Arrived reports the name of each gated query as it arrives.
func (u *Upstream) Arrived() <-chan string { return u.arrived }

// Count returns how many queries for name/qtype arrived over network ("udp",
// "tcp", "tls" or "" for all).
func (u *Upstream) Count(name string, qtype uint16, network string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	prefix := dns.Fqdn(strings.ToLower(name)) + "|" + dns.TypeToString[qtype] + "|"
	n := 0
	for k, c := range u.counts {
		if strings.HasPrefix(k, prefix) && (network == "" || strings.HasSuffix(k, "|"+network)) {
			n += c
		}
	}
	return n
}

// Total returns the number of queries received.
func (u *Upstream) Total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.total
}

func (u *Upstream) handler(network string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.RecursionAvailable = true
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		u.mu.Lock()
		u.counts[name+"|"+dns.TypeToString[q.Qtype]+"|"+network]++
		u.total++
		u.mu.Unlock()
		for _, z := range u.silent {
			if dns.IsSubDomain(z, name) {
				return
			}
		}
		if g, ok := u.gates[name]; ok {
			u.arrived <- name
			<-g
		}
		if o := r.IsEdns0(); o != nil {
			m.SetEdns0(o.UDPSize(), o.Do())
		}
		switch {
		case u.servfail[name]:
			m.Rcode = dns.RcodeServerFailure
		case u.truncate[name] && network == "udp":
			m.Truncated = true
		default:
			if withSOA, ok := u.nxdomain[name]; ok {
				m.Rcode = dns.RcodeNameError
				if withSOA {
					m.Ns = append(m.Ns, dns.Copy(u.soa))
				}
				break
			}
			u.answer(m, name, q.Qtype)
		}
		w.WriteMsg(m)
	}
}

// answer fills m for name/qtype, following CNAMEs inside the zone.
func (u *Upstream) answer(m *dns.Msg, name string, qtype uint16) {
	for range 16 {
		if rrs := u.rrs[name+"|"+dns.TypeToString[qtype]]; len(rrs) > 0 {
			for _, rr := range rrs {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
			return
		}
		c := u.rrs[name+"|CNAME"]
		if len(c) == 0 || qtype == dns.TypeCNAME {
			break
		}
		m.Answer = append(m.Answer, dns.Copy(c[0]))
		name = strings.ToLower(c[0].(*dns.CNAME).Target)
		if !u.names[name] {
			return // the target is elsewhere: the client must follow it
		}
	}
	if len(m.Answer) == 0 && !u.names[name] {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, dns.Copy(u.soa))
	}
}

// Start serves UDP and TCP on one loopback port until the test ends.
func (u *Upstream) Start(t testing.TB) *Upstream {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("resolvertest: no free port for UDP and TCP")
	}
	u.Addr = pc.LocalAddr().String()
	u.serve(t, &dns.Server{PacketConn: pc, Handler: u.handler("udp")})
	u.serve(t, &dns.Server{Listener: ln, Handler: u.handler("tcp")})
	return u
}

// StartTLS serves DNS over TLS on loopback with a certificate for 127.0.0.1 and
// "dot.test", and returns the path of the CA file to trust.
func (u *Upstream) StartTLS(t testing.TB) (caFile string) {
	t.Helper()
	cert, caPEM := selfSigned(t)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	u.TLSAddr = ln.Addr().String()
	u.serve(t, &dns.Server{Listener: ln, Net: "tcp-tls", Handler: u.handler("tls")})
	return caFile
}

func (u *Upstream) serve(t testing.TB, s *dns.Server) {
	started := make(chan struct{})
	s.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		for _, g := range u.gates {
			select {
			case <-g:
			default:
				close(g)
			}
		}
		s.Shutdown()
		<-done
	})
}

// selfSigned returns a certificate valid for 127.0.0.1 and dot.test and its PEM.
func selfSigned(t testing.TB) (tls.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "resolvertest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"dot.test"},
		IPAddresses:           []net.IP{netip.MustParseAddr("127.0.0.1").AsSlice()},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
