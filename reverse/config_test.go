package reverse

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const sampleYAML = `
listen: ["127.0.0.1:8080"]
tls_listen: ["127.0.0.1:8443"]
tls: {mode: internal, names: [app.example.test, "*.example.test"]}
state_dir: /var/lib/portcullis
redirect_https: true
http2: false
limits: {rate: 600/m, burst: 20, max_conns_per_client: 64, max_conns: 10000, header_timeout: 5s, body_timeout: 60s, min_body_rate: 1024, max_header_bytes: 32768, max_body_bytes: 10485760}
forwarded_headers: {x_forwarded_for: true, x_forwarded_proto: true, x_forwarded_host: false, forwarded: true, trusted_proxies: [10.0.0.0/8]}
hide: {remove: [Server, X-Powered-By], server: portcullis}
routes:
  - name: app
    host: [app.example.test]
    path_prefix: /api/
    path_glob: "/api/**"
    methods: [GET, POST]
    header: {X-Beta: "1"}
    pool: app
    cache: default
    limits: {rate: 5, max_body_bytes: 1024}
    hide_origin: true
`

func TestConfigDecodesStrictly(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(sampleYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("sample invalid: %v", errs)
	}
	if c.Limits.Rate != 10 || c.Limits.HeaderTimeout != 5*time.Second || *c.HTTP2 ||
		c.ForwardedHeaders.TrustedProxies[0] != netip.MustParsePrefix("10.0.0.0/8") ||
		*c.ForwardedHeaders.XForwardedHost || c.Routes[0].Limits.Rate != 5 || c.TLS.Names[1] != "*.example.test" {
		t.Errorf("decoded %+v", c)
	}
	merged := c.Limits.merged(c.Routes[0].Limits)
	if merged.Rate != 5 || merged.MaxBodyBytes != 1024 || merged.BodyTimeout != 60*time.Second {
		t.Errorf("route limits merged %+v", merged)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{
		Listen:    []string{"8080"},
		TLSListen: []string{"127.0.0.1:8443"},
		TLS:       TLSConfig{Mode: "letsencrypt", Names: []string{"Bad.Name"}},
		Routes: []Route{
			{Name: "a", Host: []string{"*"}, PathPrefix: "api", PathGlob: "[", Methods: []string{"get"}},
			{Name: "a", Pool: "p", Limits: &Limits{MaxConns: 1, Rate: -1}},
		},
		Limits: Limits{Burst: -1},
		Hide:   Hide{Remove: []string{"Bad Header"}},
	}
	want := []string{
		"listen[0]", "tls.mode", "tls.names[0]", "routes[0].pool", "routes[0].host[0]",
		"routes[0].path_prefix", "routes[0].path_glob", "routes[0].methods[0]", "routes[1].name",
		"routes[1].limits", "routes[1].limits.rate", "limits.burst", "hide.remove[0]",
	}
	got := map[string]bool{}
	for _, e := range c.Validate() {
		got[e.Path] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no error at %s (got %v)", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("errors at %v, want exactly %v", got, want)
	}
}

func FuzzRate(f *testing.F) {
	for _, s := range []string{"10", "10/s", "600/m", "3600/h", "0.5", "1/d", "-1", "x", "", "1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r Rate
		if err := r.UnmarshalText([]byte(s)); err == nil && (r < 0 || float64(r) != float64(r)) {
			t.Errorf("%q accepted as %v", s, r)
		}
	})
}

func FuzzSplitHost(f *testing.F) {
	for _, s := range []string{"a.test", "A.Test.:8080", "[::1]:443", "::1", "[fe80::1%25eth0]", ":80", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, _ := splitHost(s, false)
		if bytes.ContainsAny([]byte(host), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || strings.HasPrefix(host, "[") {
			t.Errorf("splitHost(%q) = %q: not normalised", s, host)
		}
	})
}

func TestConfigACMENeedsFixedPorts(t *testing.T) {
	cfg := Config{Listen: []string{"127.0.0.1:0"}, TLSListen: []string{"127.0.0.1:0"}, TLS: TLSConfig{Mode: "acme"}}
	var got []string
	for _, e := range cfg.Validate() {
		got = append(got, e.Path)
	}
	if strings.Join(got, " ") != "listen[0] tls_listen[0]" {
		t.Fatalf("errors at %v, want listen[0] and tls_listen[0] (port 0 with mode acme)", got)
	}
	cfg.TLS.Mode = "internal"
	if errs := cfg.Validate(); len(errs) != 0 {
		t.Fatalf("port 0 with mode internal: %v", errs)
	}
}
