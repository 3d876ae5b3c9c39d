package pac

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// FuzzGenerate feeds arbitrary domains, proxy addresses and networks to
// Validate and Generate: they never panic, whatever validates generates, and
// the generated variables are JSON literals that hold the normalised domain,
// so no input can break out of its string into the script. Seeds:
// testdata/fuzz/FuzzGenerate.
func FuzzGenerate(f *testing.F) {
	f.Fuzz(func(t *testing.T, domain, proxy, cidr string) {
		cfg := Config{Proxy: proxy, DirectDomains: []string{domain}}
		if p, err := netip.ParsePrefix(cidr); err == nil {
			cfg.DirectCIDRs = []netip.Prefix{p}
		}
		valid := len(cfg.Validate()) == 0
		out, err := Generate(cfg, "127.0.0.1:3128")
		if valid != (err == nil) {
			t.Fatalf("Validate says %v, Generate says %v", valid, err)
		}
		if err != nil {
			return
		}
		vars := map[string]any{}
		lines := strings.Split(string(out), "\n")
		for _, line := range lines {
			rest, ok := strings.CutPrefix(line, "var portcullis")
			if !ok {
				continue
			}
			name, lit, ok := strings.Cut(rest, " = ")
			var v any
			if !ok || !strings.HasSuffix(lit, ";") || json.Unmarshal([]byte(strings.TrimSuffix(lit, ";")), &v) != nil {
				t.Fatalf("variable line is not a JSON literal: %q", line)
			}
			vars[name] = v
		}
		if len(vars) != 8 || !strings.HasSuffix(string(out), script) {
			t.Fatalf("unexpected shape: %d variables\n%s", len(vars), out)
		}
		d, _ := normDomain(domain)
		js, _ := json.Marshal([]any{vars["Domains"], vars["Patterns"]})
		if !strings.Contains(string(js), `"`+d+`"`) {
			t.Fatalf("domain %q (%q) missing from %s", domain, d, js)
		}
	})
}
