package pac

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// harness runs a PAC file in a fresh vm context with the PAC helper functions
// stubbed: dnsResolve and dnsResolveEx read a fixed table and record each
// lookup, isInNet follows Mozilla's implementation (resolving names through the
// stub), isInNetEx (present only when the case asks for it) uses node's own
// BlockList. It prints one JSON result per case.
const harness = `
const fs = require("fs"), vm = require("vm"), net = require("net");
const pac = fs.readFileSync(process.argv[2], "utf8");
const input = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const out = [];
for (const c of input.cases) {
	const lookups = [];
	const resolve = (h) => { lookups.push(h); return input.dns[h] || []; };
	const sb = {
		isPlainHostName: (h) => h.indexOf(".") < 0,
		dnsDomainIs: (h, d) => h.length >= d.length && h.substring(h.length - d.length) == d,
		shExpMatch: (s, p) => new RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$").test(s),
		dnsResolve: (h) => { const a = resolve(h).filter((x) => x.indexOf(":") < 0); return a.length ? a[0] : null; },
		isInNet: (h, pat, mask) => {
			const ip = /^\d+\.\d+\.\d+\.\d+$/.test(h) ? h : sb.dnsResolve(h);
			if (!ip) return false;
			const n = (s) => s.split(".").reduce((a, x) => a * 256 + Number(x), 0);
			return ((n(ip) & n(mask)) >>> 0) == ((n(pat) & n(mask)) >>> 0);
		},
	};
	if (c.ex) {
		sb.dnsResolveEx = (h) => resolve(h).join(";");
		sb.isInNetEx = (ip, prefix) => {
			const [a, bits] = prefix.split("/");
			const fam = a.indexOf(":") >= 0 ? "ipv6" : "ipv4";
			if ((ip.indexOf(":") >= 0 ? "ipv6" : "ipv4") != fam) return false;
			const bl = new net.BlockList();
			bl.addSubnet(a, Number(bits), fam);
			return bl.check(ip, fam);
		};
	}
	vm.createContext(sb);
	vm.runInContext(pac, sb, { filename: "proxy.pac" });
	out.push({ result: sb.FindProxyForURL(c.url, c.host), lookups });
}
console.log(JSON.stringify(out));
`

type nodeCase struct {
	URL    string `json:"url"`
	Host   string `json:"host"`
	Ex     bool   `json:"ex"`
	want   string
	lookup bool // whether a DNS lookup is expected
}

type nodeResult struct {
	Result  string   `json:"result"`
	Lookups []string `json:"lookups"`
}

func needNode(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required in CI")
		}
		t.Skip("node not installed")
	}
	return bin
}

// runPAC evaluates pac over cases in node.
func runPAC(t *testing.T, node string, pac []byte, dns map[string][]string, cases []nodeCase) []nodeResult {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"harness.js": []byte(harness), "proxy.pac": pac}
	in, err := json.Marshal(map[string]any{"cases": cases, "dns": dns})
	if err != nil {
		t.Fatal(err)
	}
	files["cases.json"] = in
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(node, filepath.Join(dir, "harness.js"), filepath.Join(dir, "proxy.pac"), filepath.Join(dir, "cases.json")).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s\nPAC:\n%s", err, out, pac)
	}
	var res []nodeResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("node output %q: %v", out, err)
	}
	return res
}

var schoolPAC = Config{
	Proxy:                "10.0.0.1:3128",
	DirectDomains:        []string{"school.lan", ".Intranet.Example.org.", "print-?.campus.test", "*.local"},
	DirectCIDRs:          []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.4.0/22"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("2001:db8:0:a000::/51")},
	DirectPlainHostnames: true,
}

func TestPACInNode(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	const proxy = "PROXY 10.0.0.1:3128"
	base := []nodeCase{
		{URL: "http://wiki/", Host: "wiki", want: "DIRECT"},
		{URL: "http://school.lan/", Host: "school.lan", want: "DIRECT"},
		{URL: "https://mail.school.lan/", Host: "mail.school.lan", want: "DIRECT"},
		{URL: "http://MAIL.School.LAN./x", Host: "MAIL.School.LAN.", want: "DIRECT"},
		{URL: "http://evilschool.lan/", Host: "evilschool.lan", want: proxy},
		{URL: "http://school.lan.evil.test/", Host: "school.lan.evil.test", want: proxy},
		{URL: "http://intranet.example.org/", Host: "intranet.example.org", want: "DIRECT"},
		{URL: "http://a.b.intranet.example.org/", Host: "a.b.intranet.example.org", want: "DIRECT"},
		{URL: "http://example.org/", Host: "example.org", want: proxy},
		{URL: "http://print-3.campus.test/", Host: "print-3.campus.test", want: "DIRECT"},
		{URL: "http://print-33.campus.test/", Host: "print-33.campus.test", want: proxy},
		{URL: "http://nas.local/", Host: "nas.local", want: "DIRECT"},
		{URL: "http://10.1.2.3/", Host: "10.1.2.3", want: "DIRECT"},
		{URL: "http://11.1.2.3/", Host: "11.1.2.3", want: proxy},
		{URL: "http://192.168.7.255/", Host: "192.168.7.255", want: "DIRECT"},
		{URL: "http://192.168.8.1/", Host: "192.168.8.1", want: proxy},
		{URL: "http://[fd12::1]/", Host: "fd12::1", want: "DIRECT"},
		{URL: "http://[FD12::1]/", Host: "[FD12::1]", want: "DIRECT"},
		{URL: "http://[fe80::1]/", Host: "fe80::1", want: proxy},
		{URL: "http://[2001:db8:0:bfff::1]/", Host: "2001:db8:0:bfff::1", want: "DIRECT"},
		{URL: "http://[2001:db8:0:c000::1]/", Host: "2001:db8:0:c000::1", want: proxy},
		{URL: "http://[::ffff:10.0.0.1]/", Host: "::ffff:10.0.0.1", want: proxy},
		{URL: "http://[::1]/", Host: "::1", want: proxy},
		{URL: "http://www.example.com/", Host: "www.example.com", want: proxy},
		{URL: "http://internal.example.com/", Host: "internal.example.com", want: proxy},
	}
	var cases []nodeCase
	for _, ex := range []bool{false, true} { // without and with isInNetEx
		for _, c := range base {
			c.Ex = ex
			cases = append(cases, c)
		}
	}
	dns := map[string][]string{"internal.example.com": {"10.9.9.9"}, "www.example.com": {"93.184.215.14"}}
	pac, err := Generate(schoolPAC, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range runPAC(t, node, pac, dns, cases) {
		c := cases[i]
		if r.Result != c.want {
			t.Errorf("FindProxyForURL(%q, %q) ex=%v = %q, want %q", c.URL, c.Host, c.Ex, r.Result, c.want)
		}
		if len(r.Lookups) != 0 {
			t.Errorf("%s: DNS lookups %v with resolve_names off", c.Host, r.Lookups)
		}
	}
}

func TestPACResolveNamesInNode(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	cfg := Config{
		DirectDomains:  []string{"school.lan"},
		DirectCIDRs:    []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		ResolveNames:   true,
		FallbackDirect: true,
	}
	const proxy = "PROXY proxy.school.lan:8080; DIRECT"
	dns := map[string][]string{
		"v4.example.com":  {"10.9.9.9"},
		"v6.example.com":  {"2001:db8::1", "fd00::5"},
		"out.example.com": {"93.184.215.14"},
		"mail.school.lan": {"10.0.0.25"},
	}
	var cases []nodeCase
	for _, ex := range []bool{false, true} {
		cases = append(cases,
			nodeCase{URL: "http://mail.school.lan/", Host: "mail.school.lan", Ex: ex, want: "DIRECT"},
			nodeCase{URL: "http://v4.example.com/", Host: "v4.example.com", Ex: ex, want: "DIRECT", lookup: true},
			nodeCase{URL: "http://out.example.com/", Host: "out.example.com", Ex: ex, want: proxy, lookup: true},
			nodeCase{URL: "http://nx.example.com/", Host: "nx.example.com", Ex: ex, want: proxy, lookup: true},
			nodeCase{URL: "http://wiki/", Host: "wiki", Ex: ex, want: proxy, lookup: true},
		)
	}
	// Only dnsResolveEx sees IPv6 addresses.
	cases = append(cases,
		nodeCase{URL: "http://v6.example.com/", Host: "v6.example.com", Ex: false, want: proxy, lookup: true},
		nodeCase{URL: "http://v6.example.com/", Host: "v6.example.com", Ex: true, want: "DIRECT", lookup: true})
	pac, err := Generate(cfg, "proxy.school.lan:8080")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range runPAC(t, node, pac, dns, cases) {
		c := cases[i]
		if r.Result != c.want {
			t.Errorf("FindProxyForURL(%q) ex=%v = %q, want %q", c.Host, c.Ex, r.Result, c.want)
		}
		if got := len(r.Lookups) > 0; got != c.lookup {
			t.Errorf("%s ex=%v: lookups %v, want lookup=%v", c.Host, c.Ex, r.Lookups, c.lookup)
		}
	}
}

func TestPACNoDirectRules(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	pac, err := Generate(Config{}, "[2001:db8::3]:3128")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pac), "Direct: nothing.") {
		t.Errorf("header comment does not say nothing goes direct:\n%s", pac[:200])
	}
	cases := []nodeCase{{URL: "http://wiki/", Host: "wiki"}, {URL: "http://10.0.0.1/", Host: "10.0.0.1"}}
	for i, r := range runPAC(t, node, pac, nil, cases) {
		if r.Result != "PROXY [2001:db8::3]:3128" || len(r.Lookups) != 0 {
			t.Errorf("%s: %q, lookups %v", cases[i].Host, r.Result, r.Lookups)
		}
	}
}
