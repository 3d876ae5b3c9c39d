package main

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// The README's quick starts, run as written: the commands are read from the
// README's code blocks, so the tests break when the README changes. Only
// addresses are changed, because a test may use nothing but loopback ports it
// chose: the policy's listeners move to port 0, its resolver to a DNS server the
// test runs (answering example.com and example.org with 127.0.0.1), its egress
// guard lets the proxy reach loopback, and curl's URLs gain the port of the
// test's origin. What a command's comment promises (a status, NXDOMAIN, a CNAME)
// is checked.

// qsCommand is one command line of a README code block and its trailing comment.
type qsCommand struct {
	line    string
	args    []string
	comment string
}

// qsReadme returns the commands of the indented code blocks in the
// README section whose heading starts with heading.
func qsReadme(t *testing.T, heading string) []qsCommand {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []qsCommand
	in, fenced, pending := false, false, ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced // YAML examples, not commands
			continue
		}
		if fenced {
			continue
		}
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, heading)
			continue
		}
		if !in || !strings.HasPrefix(line, "    ") {
			continue
		}
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			pending += rest + " "
			continue
		}
		line, pending = pending+line, ""
		c := qsCommand{line: line}
		if i := strings.Index(line, " # "); i >= 0 {
			line, c.comment = line[:i], strings.TrimSpace(line[i+3:])
		}
		c.args = qsWords(t, line)
		if len(c.args) > 0 {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("no commands under a README heading starting %q", heading)
	}
	return cmds
}

// qsWords splits a command line as sh does for the simple lines the README
// uses: words, single and double quotes. Anything more (pipes, variables,
// redirections) fails the test: the quick starts must stay runnable as written.
func qsWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	quote := rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("|;&$<>`(){}", r):
			t.Fatalf("README quick start %q uses %q: the test runs only simple commands", s, r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// qsWorld is what a quick start runs against: a copy of policies/ (the commands
// run in its parent), loopback origins and a DNS upstream.
type qsWorld struct {
	dir       string // holds policies/
	origin    *httptest.Server
	tlsOrigin *httptest.Server
	caFile    string // the TLS origin's certificate, for curl --cacert
	dns       *resolvertest.Upstream
	seen      chan http.Header // request headers the origins received
	addrs     map[string]string
}

const qsBody = "hello from the quick-start origin\n"

func newQSWorld(t *testing.T) *qsWorld {
	t.Helper()
	w := &qsWorld{dir: t.TempDir(), seen: make(chan http.Header, 100)}
	if err := os.CopyFS(filepath.Join(w.dir, "policies"), os.DirFS("../../policies")); err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case w.seen <- r.Header.Clone():
		default:
		}
		io.WriteString(rw, qsBody)
	})
	w.origin = httptest.NewServer(h)
	t.Cleanup(w.origin.Close)
	w.tlsOrigin = httptest.NewTLSServer(h) // its certificate is valid for example.com
	t.Cleanup(w.tlsOrigin.Close)
	w.caFile = filepath.Join(w.dir, "origin.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.tlsOrigin.Certificate().Raw})
	if err := os.WriteFile(w.caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	w.dns = resolvertest.New(60, 60).Add(t,
		"example.com. 60 IN A 127.0.0.1",
		"example.org. 60 IN A 127.0.0.1",
		"forcesafesearch.google.com. 60 IN A 127.0.0.2",
	).Start(t)
	return w
}

// qsPort returns the port of an httptest server.
func qsPort(s *httptest.Server) string {
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return p
}

// rewritePolicy moves the policy at rel (under w.dir) to loopback addresses the
// test controls, keeping everything else as it is.
func (w *qsWorld) rewritePolicy(t *testing.T, rel string) {
	t.Helper()
	path := filepath.Join(w.dir, rel)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	list := func(vals ...string) *yaml.Node {
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, v := range vals {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: v, Style: yaml.DoubleQuotedStyle})
		}
		return n
	}
	scalar := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
	if qsYAMLGet(root, "forward") != nil {
		qsYAMLSet(root, list("127.0.0.1:0"), "forward", "listen")
		qsYAMLSet(root, list(qsPort(w.tlsOrigin)), "forward", "connect_ports")
	}
	if qsYAMLGet(root, "dns") != nil {
		qsYAMLSet(root, list("127.0.0.1:0"), "dns", "listen")
	}
	if qsYAMLGet(root, "admin") != nil {
		qsYAMLSet(root, scalar("127.0.0.1:0"), "admin", "listen")
	}
	qsYAMLSet(root, list("udp://"+w.dns.Addr), "resolver", "upstreams")
	qsYAMLSet(root, list("127.0.0.0/8"), "resolver", "egress", "allow")
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// qsYAMLGet returns the value of key in mapping m, or nil.
func qsYAMLGet(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// qsYAMLSet sets the value at path under mapping m, making the mappings on the way.
func qsYAMLSet(m *yaml.Node, v *yaml.Node, path ...string) {
	for i, key := range path {
		next := qsYAMLGet(m, key)
		if i == len(path)-1 {
			if next != nil {
				*next = *v
			} else {
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
			}
			return
		}
		if next == nil || next.Kind != yaml.MappingNode {
			n := &yaml.Node{Kind: yaml.MappingNode}
			if next != nil {
				*next = *n
				n = next
			} else {
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, n)
			}
			next = n
		}
		m = next
	}
}

var qsListenRE = regexp.MustCompile(`\b(forward|reverse-tls|reverse|dns|admin)=([^\s"]+)`)

// start runs `portcullis run ARGS` in w.dir (the policy named by --config
// rewritten first; the embedded default is policies/default.yaml) and waits
// until it logs its listeners.
func (w *qsWorld) start(t *testing.T, args []string) {
	t.Helper()
	config := ""
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			config = args[i+1]
		}
	}
	if config == "" { // the embedded default: run its bytes, moved to loopback ports
		config = "policies/default.yaml"
		args = append(args, "--config", config)
	}
	w.rewritePolicy(t, config)
	cmd := exec.Command(binary, args...)
	cmd.Dir = w.dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 100)
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("portcullis %v exited before serving:\n%s", args, log.String())
			}
			log.WriteString(line + "\n")
			if strings.Contains(line, "portcullis running") {
				w.addrs = map[string]string{}
				for _, m := range qsListenRE.FindAllStringSubmatch(line, -1) {
					w.addrs[m[1]] = m[2]
				}
				go func() { // keep draining so the process never blocks on its log
					for range lines {
					}
				}()
				return
			}
		case <-timeout:
			t.Fatalf("portcullis %v did not start:\n%s", args, log.String())
		}
	}
}

// qsTool returns the path of an outside tool, skipping the test without it (and
// failing under CI=true, where .ci/run installs it).
func qsTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (%s)", name, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return path
}

// qsEnv is the environment without proxy variables, which would change
// where curl sends its requests.
func qsEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			env = append(env, kv)
		}
	}
	return env
}

var qsStatusRE = regexp.MustCompile(`^(\d{3})\b`)

// curl runs a README curl command against the world and checks what its
// comment promises: the status it names (200 without one) and, for 200, the
// origin's body.
func (w *qsWorld) curl(t *testing.T, c qsCommand) {
	t.Helper()
	curlPath := qsTool(t, "curl", "curl")
	bodyFile := filepath.Join(t.TempDir(), "body")
	args := []string{"-sS", "--max-time", "30", "-o", bodyFile, "-w", "%{http_code}"}
	for _, a := range c.args[1:] {
		a = strings.ReplaceAll(a, "127.0.0.1:3128", w.addrs["forward"])
		if u, err := url.Parse(a); err == nil && u.Port() == "" && (u.Hostname() == "example.com" || u.Hostname() == "example.org") {
			switch u.Scheme {
			case "http":
				u.Host = u.Hostname() + ":" + qsPort(w.origin)
			case "https":
				u.Host = u.Hostname() + ":" + qsPort(w.tlsOrigin)
				args = append(args, "--cacert", w.caFile)
			}
			a = u.String()
		}
		args = append(args, a)
	}
	cmd := exec.Command(curlPath, args...)
	cmd.Dir, cmd.Env = w.dir, qsEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README: %s\nran curl %v: %v\n%s", c.line, args, err, out)
	}
	want := 200
	if m := qsStatusRE.FindStringSubmatch(c.comment); m != nil {
		want, _ = strconv.Atoi(m[1])
	}
	body, _ := os.ReadFile(bodyFile)
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(want) {
		t.Fatalf("README: %s\ncurl %v: status %s, the README says %d\n%s", c.line, args, got, want, body)
	}
	switch want {
	case 200:
		if string(body) != qsBody {
			t.Fatalf("README: %s\nbody %q, want the origin's %q", c.line, body, qsBody)
		}
	case 403:
		if !strings.Contains(c.comment, "block page") {
			break
		}
		host := ""
		for _, a := range c.args {
			if u, err := url.Parse(a); err == nil && u.Scheme == "http" && !strings.HasPrefix(u.Host, "127.0.0.1") {
				host = u.Hostname()
			}
		}
		// curl asks for no HTML: the page comes as text, naming the URL and the rule.
		if !strings.Contains(strings.ToLower(string(body)), "blocked") || host == "" || !strings.Contains(string(body), host) {
			t.Fatalf("README: %s\nthe 403 is not a block page naming %q:\n%s", c.line, host, body)
		}
	}
}

// portcullis runs a README `go run ./cmd/portcullis` command (not `run`) with the test's
// binary, in w.dir, and returns its output.
func (w *qsWorld) portcullis(t *testing.T, c qsCommand, stdin string) string {
	t.Helper()
	cmd := exec.Command(binary, c.args[3:]...)
	cmd.Dir = w.dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README: %s\n%v\n%s", c.line, err, out)
	}
	return string(out)
}

// qsIsPortcullis reports whether c is `go run ./cmd/portcullis SUBCOMMAND…`.
func qsIsPortcullis(c qsCommand, sub string) bool {
	return len(c.args) >= 4 && c.args[0] == "go" && c.args[1] == "run" && c.args[2] == "./cmd/portcullis" && c.args[3] == sub
}

func TestReadmeQuickStartBrowserProxy(t *testing.T) {
	cmds := qsReadme(t, "## Use it as your browser's proxy")
	w := newQSWorld(t)
	curls := 0
	for _, c := range cmds {
		switch {
		case qsIsPortcullis(c, "run"):
			w.start(t, c.args[3:])
		case c.args[0] == "curl":
			w.curl(t, c)
			curls++
			// The default profile (elite) leaves no trace of the proxy or the client.
			var hdr http.Header
			select {
			case hdr = <-w.seen:
			case <-time.After(10 * time.Second):
				t.Fatalf("README: %s\nthe origin saw no request", c.line)
			}
			for _, k := range []string{"X-Forwarded-For", "Forwarded", "Via", "X-Real-Ip"} {
				if v := hdr.Get(k); v != "" {
					t.Errorf("README: %s\nthe origin received %s: %s", c.line, k, v)
				}
			}
		default:
			t.Fatalf("README quick start command the test does not know: %s", c.line)
		}
	}
	if curls < 2 {
		t.Fatalf("ran %d curl commands, the README shows HTTP and HTTPS", curls)
	}
}

func TestReadmeQuickStartSchool(t *testing.T) {
	cmds := qsReadme(t, "## A school deployment")
	w := newQSWorld(t)
	var seen []string
	for _, c := range cmds {
		switch {
		case qsIsPortcullis(c, "validate"):
			if out := w.portcullis(t, c, ""); !strings.Contains(out, "OK") {
				t.Fatalf("README: %s\n%s", c.line, out)
			}
		case qsIsPortcullis(c, "passwd"):
			// The password the curl lines sign in with, twice in case it is confirmed.
			w.portcullis(t, c, "PASSWORD\nPASSWORD\n")
		case qsIsPortcullis(c, "run"):
			w.start(t, c.args[3:])
		case qsIsPortcullis(c, "policy"):
			out := w.portcullis(t, c, "")
			if strings.HasPrefix(c.comment, "blocked") && (!strings.Contains(out, "block") || !strings.Contains(out, "social-during-school-hours")) {
				t.Fatalf("README: %s\nsays %q, explain printed:\n%s", c.line, c.comment, out)
			}
		case c.args[0] == "curl":
			w.curl(t, c)
		default:
			t.Fatalf("README quick start command the test does not know: %s", c.line)
		}
		seen = append(seen, c.args[0]+" "+c.args[min(3, len(c.args)-1)])
	}
	for _, want := range []string{"go passwd", "go run", "go policy"} {
		if !strings.Contains(strings.Join(seen, ","), want) {
			t.Fatalf("the school quick start lost its %q step: %v", want, seen)
		}
	}
}

func TestReadmeQuickStartDNS(t *testing.T) {
	cmds := qsReadme(t, "## DNS:")
	digPath := ""
	w := newQSWorld(t)
	digs := 0
	for _, c := range cmds {
		switch {
		case qsIsPortcullis(c, "run"):
			w.start(t, c.args[3:])
		case c.args[0] == "dig":
			if digPath == "" {
				digPath = qsTool(t, "dig", "dnsutils")
			}
			_, dnsPort, _ := net.SplitHostPort(w.addrs["dns"])
			if dnsPort == "" {
				t.Fatalf("no DNS listener logged: %v", w.addrs)
			}
			args := []string{"+time=5", "+tries=3"}
			for i := 1; i < len(c.args); i++ {
				args = append(args, c.args[i])
				if c.args[i] == "-p" && i+1 < len(c.args) {
					args = append(args, dnsPort)
					i++
				}
			}
			out, err := exec.Command(digPath, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("README: %s\ndig %v: %v\n%s", c.line, args, err, out)
			}
			qsCheckDig(t, c, string(out))
			digs++
		default:
			t.Fatalf("README quick start command the test does not know: %s", c.line)
		}
	}
	if digs < 3 {
		t.Fatalf("ran %d dig commands, the README shows a block, SafeSearch and forwarding", digs)
	}
}

// qsCheckDig checks dig's output against the README comment: NXDOMAIN, a CNAME
// to a name, or else an answer from the upstream.
func qsCheckDig(t *testing.T, c qsCommand, out string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("README: %s\n%s\ndig printed:\n%s", c.line, fmt.Sprintf(format, args...), out)
	}
	switch {
	case strings.HasPrefix(c.comment, "NXDOMAIN"):
		if !strings.Contains(out, "status: NXDOMAIN") {
			fail("not NXDOMAIN")
		}
	case strings.HasPrefix(c.comment, "CNAME "):
		target := strings.Fields(c.comment)[1]
		if !regexp.MustCompile(`(?m)\sCNAME\s+` + regexp.QuoteMeta(target) + `\.$`).MatchString(out) {
			fail("no CNAME to %s", target)
		}
	default:
		if !strings.Contains(out, "status: NOERROR") || !regexp.MustCompile(`(?m)\sA\s+127\.0\.0\.1$`).MatchString(out) {
			fail("not the upstream's answer (A 127.0.0.1)")
		}
	}
}

// TestReadmeQuickStartParsing holds the README reader to what the tests rely on.
func TestReadmeQuickStartParsing(t *testing.T) {
	if got := qsWords(t, `curl -x http://a:1 -U 'alice:pass word' "http://b/"`); strings.Join(got, "|") != "curl|-x|http://a:1|-U|alice:pass word|http://b/" {
		t.Fatalf("qsWords = %q", got)
	}
	cmds := qsReadme(t, "## A school deployment")
	for _, c := range cmds {
		if qsIsPortcullis(c, "policy") && !strings.Contains(c.line, "--time") {
			t.Fatalf("a continued line was not joined: %q", c.line)
		}
	}
}
