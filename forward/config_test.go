package forward

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := &Config{
		Listen:            []string{"127.0.0.1:3128", "nohostport", "example.com:80", "127.0.0.1:99999"},
		AllowClients:      []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}},
		ConnectPorts:      []int{443, 0, 70000},
		DialTimeout:       -time.Second,
		MaxIdleConns:      -1,
		MaxConns:          -2,
		MaxConnsPerClient: -1,
		TCPCongestion:     "reno; rm",
	}
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Path)
	}
	want := []string{"listen[1]", "listen[2]", "listen[3]", "allow_clients[1]", "tcp_congestion", "connect_ports[1]", "connect_ports[2]", "dial_timeout", "max_idle_conns", "max_conns", "max_conns_per_client"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	if errs := (&Config{}).Validate(); len(errs) != 0 {
		t.Fatalf("empty config: %v", errs)
	}
	if _, err := New(Options{Config: c}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func TestConfigDefaults(t *testing.T) {
	d := (*Config)(nil).WithDefaults()
	if !reflect.DeepEqual(d.Listen, []string{"127.0.0.1:3128"}) || !reflect.DeepEqual(d.ConnectPorts, []int{443}) ||
		len(d.AllowClients) != 2 || !d.AllowClients[0].Contains(netip.MustParseAddr("127.0.0.1")) ||
		!d.AllowClients[1].Contains(netip.MustParseAddr("::1")) || d.AllowClients[0].Contains(netip.MustParseAddr("10.0.0.1")) ||
		d.DialTimeout != DefaultDialTimeout || d.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || d.TunnelIdleTimeout != DefaultTunnelIdleTimeout {
		t.Fatalf("defaults %+v", d)
	}
	tr := NewTransport((&Config{MaxIdleConnsPerHost: 7}).TransportConfig())
	if tc := tr.Config(); tc.Proxy != nil || tc.MaxIdlePerHost != 7 || tc.ResponseHeaderTimeout != DefaultResponseHeaderTimeout || !tc.HTTP2 {
		t.Fatalf("transport %+v", tc)
	}
}
