package rules_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/rules"
)

// FuzzCompileRule compiles a rule from arbitrary globs, CIDRs, domains and paths and
// evaluates a request with an arbitrary host, client and path. Compilation never
// panics and reports each problem under the rule; a compiled program's Evaluate and
// Explain agree; a domain rule matches the domain and its subdomains; a client rule
// matches the network's own address.
func FuzzCompileRule(f *testing.F) {
	f.Add("*.tiktok.*", "10.0.0.0/8", "example.com", "/shorts/*", "www.tiktok.com", "10.1.2.3", "/shorts/x")
	f.Add("[x", "300.1.1.1/8", "Example.COM.", "/a/**", "example.com", "::1", "/a/b/c")
	f.Add("**", "::ffff:127.0.0.1/128", "xn--bcher-kva.example", "{a,b", "bücher.example", "127.0.0.1", "/")
	f.Add("*.", "0.0.0.0/0", "", "", "", "", "")
	f.Add("a[!b-", "10.0.0.1", "com", "/%2e%2e/*", "a.com", "10.0.0.1", "/%2e%2e/x")
	f.Fuzz(func(t *testing.T, globPat, cidr, domain, path, host, client, reqPath string) {
		cfg := &rules.Config{Rules: []*rules.RuleConfig{
			{Name: "glob", Glob: []string{globPat}, Path: []string{path}, Action: "block"},
			{Name: "client", Client: []string{cidr}, Action: "block"},
			{Name: "domain", Domain: []string{domain}, Action: "block"},
		}}
		p, errs := rules.Compile(cfg, nil)
		if p == nil {
			if len(errs) == 0 {
				t.Fatal("no program and no problem")
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Path, "rules[") || e.Msg == "" {
					t.Errorf("problem not under a rule: %+v", e)
				}
			}
			return
		}
		addr, _ := netip.ParseAddr(client)
		facts := &rules.Facts{Door: rules.DoorForward, Client: addr, Method: "GET", Scheme: "http",
			Host: host, Port: 80, Path: reqPath}
		v := p.Evaluate(facts)
		ev, steps := p.Explain(facts)
		if !reflect.DeepEqual(v, ev) {
			t.Fatalf("Evaluate %+v, Explain %+v", v, ev)
		}
		if len(steps) == 0 || (v.Rule != "default" && !steps[len(steps)-1].Matched) {
			t.Fatalf("explain steps %+v for verdict %+v", steps, v)
		}
		if pf, err := netip.ParsePrefix(cidr); err == nil && pf.Addr().Unmap().Is4() == pf.Addr().Is4() {
			f2 := *facts
			f2.Client = pf.Masked().Addr()
			if got := p.Evaluate(&f2); got.Rule != "glob" && got.Rule != "client" {
				t.Errorf("client %s inside %s: verdict %+v", f2.Client, cidr, got)
			}
		}
		if plainDomain(domain) {
			for _, h := range []string{domain, "sub." + domain} {
				f2 := rules.Facts{Door: rules.DoorForward, Method: "GET", Scheme: "http", Host: h, Port: 80}
				if got := p.Evaluate(&f2); got.Action != rules.ActionBlock {
					t.Errorf("host %q under domain %q: verdict %+v", h, domain, got)
				}
			}
		}
	})
}

// plainDomain reports whether d is an already-normalised DNS name: lowercase
// letters, digits and hyphens in dot-separated labels of 1 to 63 bytes.
func plainDomain(d string) bool {
	if d == "" || len(d) > 200 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
