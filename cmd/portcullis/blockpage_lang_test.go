package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// blockPagePolicy starts the binary on a policy blocking games.example with
// forward.block_page set to block (YAML flow mapping) and returns the forward
// door's address; extra files are written next to the policy first.
func blockPagePolicy(t *testing.T, blockPage, auth string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policy := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(policy, []byte(`forward:
  listen: ["127.0.0.1:0"]
  contact: "Ask Mme Dupont, room 12"
  block_page: `+blockPage+`
`+auth+`schedules:
  lessons: {timezone: Europe/Paris, windows: [{days: [mon-sun], from: "00:00", to: "24:00"}]}
rules:
  - {name: no-games, domain: [games.example], action: block, category: games, reason: No games in class.}
default: allow
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addrs := runPolicy(t, policy)
	if addrs["forward"] == "" {
		t.Fatalf("no forward listener in %v", addrs)
	}
	return addrs["forward"]
}

// TestBlockPageLanguageThroughBinary: through the forward door, a Go client's
// Accept-Language picks the block page's language among the shipped ones (quality
// values honoured, a region falling back to its language), and a language that is
// not shipped gets the policy's first; the plain-text page follows too.
func TestBlockPageLanguageThroughBinary(t *testing.T) {
	proxy := blockPagePolicy(t, "{lang: [fr, en]}", "", nil)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})}}
	for _, c := range []struct {
		accept, lang string
		want         []string
	}{
		{"fr", "fr", []string{`<html lang="fr">`, "Cette page est bloquée", "<dt>Catégorie</dt>", "No games in class.", "Ask Mme Dupont, room 12"}},
		{"de-CH;q=0.9,es;q=0.8", "de", []string{`<html lang="de">`, "Diese Seite ist gesperrt", "<dt>Grund</dt>"}},
		{"it;q=1, es;q=0.5, de;q=0", "es", []string{`<html lang="es">`, "Esta página está bloqueada"}},
		{"it, pt-BR", "fr", []string{`<html lang="fr">`, "Cette page est bloquée"}},
		{"", "fr", []string{`<html lang="fr">`}},
		{"en-GB", "en", []string{`<html lang="en">`, "This page is blocked"}},
	} {
		req, _ := http.NewRequest("GET", "http://games.example/", nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		if c.accept != "" {
			req.Header.Set("Accept-Language", c.accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Language") != c.lang {
			t.Errorf("Accept-Language %q: %d, Content-Language %q, want 403 and %s", c.accept, resp.StatusCode, resp.Header.Get("Content-Language"), c.lang)
		}
		for _, w := range c.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("Accept-Language %q: page lacks %q:\n%s", c.accept, w, body)
			}
		}
	}

	// The time is in the policy's zone (Europe/Paris: CET or CEST).
	req, _ := http.NewRequest("GET", "http://games.example/", nil)
	req.Header.Set("Accept-Language", "de")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	zone, _ := time.Now().In(mustZone(t, "Europe/Paris")).Zone()
	for _, w := range []string{"Gesperrt von Portcullis", "Regel: no-games", "Kategorie: games", " " + zone + "\n"} {
		if !strings.Contains(string(body), w) {
			t.Errorf("German text page lacks %q:\n%s", w, body)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	return loc
}

// TestBlockPageLanguageCurl: curl through the binary gets the French page for
// Accept-Language: fr, the German one for de-CH;q=0.9,es;q=0.8, and the policy's
// first language for one that is not shipped.
func TestBlockPageLanguageCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required in CI")
		}
		t.Skip("curl not installed")
	}
	proxy := blockPagePolicy(t, "{lang: [es, en]}", "", nil)
	for accept, want := range map[string]string{
		"fr":                   "Cette page est bloquée",
		"de-CH;q=0.9,es;q=0.8": "Diese Seite ist gesperrt",
		"ja":                   "Esta página está bloqueada",
	} {
		out, err := exec.Command(curl, "-s", "-o", "-", "-w", "\n%{http_code}", "--proxy", "http://"+proxy,
			"-H", "Accept: text/html", "-H", "Accept-Language: "+accept, "http://games.example/").Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		if !strings.HasSuffix(string(out), "\n403") || !strings.Contains(string(out), want) {
			t.Errorf("curl with Accept-Language %q: want 403 and %q:\n%s", accept, want, out)
		}
	}
}

// TestBlockPageTemplateAndUnblockLinkThroughBinary: a school's template file is
// rendered with its fields (the signed-in user too), and the unblock link is
// filled in, query-escaped; a URL carrying <script> is escaped in both.
func TestBlockPageTemplateAndUnblockLinkThroughBinary(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := `<!DOCTYPE html>
<html lang="{{.Lang}}"><title>{{.T.Blocked}}: {{.Host}}</title>
<h1>Lycée Victor Hugo — {{.T.Title}}</h1>
<p id="url">{{.URL}}</p><p id="cat">{{.Category}}</p><p id="why">{{.Reason}}</p>
<p id="rule">{{.Rule}}</p><p id="user">{{.User}}</p><p id="time">{{.Time}}</p><p id="contact">{{.Contact}}</p>
{{if .UnblockURL}}<a id="unblock" href="{{.UnblockURL}}">{{.T.Unblock}}</a>{{end}}
</html>
`
	proxy := blockPagePolicy(t,
		`{template: school.html, lang: [fr], unblock_url: "https://help.lycee.example/ask?site={url}&cat={category}&rule={rule}&who={user}"}`,
		"  auth: {htpasswd_file: htpasswd}\n",
		map[string]string{"school.html": tmpl, "htpasswd": "élève1:" + string(hash) + "\n"})

	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cred := base64.StdEncoding.EncodeToString([]byte("élève1:pw"))
	fmt.Fprintf(c, "GET http://games.example/play?q=<script>alert(1)</script> HTTP/1.1\r\nHost: games.example\r\n"+
		"Accept: text/html\r\nAccept-Language: fr-FR,fr;q=0.9\r\nProxy-Authorization: Basic %s\r\nConnection: close\r\n\r\n", cred)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d:\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, "<script>") {
		t.Fatalf("the URL's <script> is not escaped:\n%s", page)
	}
	for _, want := range []string{
		`<html lang="fr"><title>Bloqué: games.example</title>`,
		"<h1>Lycée Victor Hugo — Cette page est bloquée</h1>",
		`<p id="url">http://games.example/play?q=&lt;script&gt;alert(1)&lt;/script&gt;</p>`,
		`<p id="cat">games</p>`, `<p id="why">No games in class.</p>`, `<p id="rule">no-games</p>`,
		`<p id="user">élève1</p>`, `<p id="contact">Ask Mme Dupont, room 12</p>`,
		`<a id="unblock" href="https://help.lycee.example/ask?site=http%3A%2F%2Fgames.example%2Fplay%3Fq%3D%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;cat=games&amp;rule=no-games&amp;who=%C3%A9l%C3%A8ve1">Demander le déblocage de ce site</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
}

// TestValidateBlockPage: validate reports a template that does not parse, one that
// reads a field the page has not, a missing template, a language that is not
// shipped and a malformed unblock link, each at the policy's field, the template's
// problems naming the template file and its line.
func TestValidateBlockPage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tp := filepath.Join(dir, "page.html")
	for _, c := range []struct{ tmpl, want string }{
		{"<h1>{{.T.Title}}</h1>\n<p>{{.URL}</p>\n", p + ":4:15: forward.block_page.template: " + tp + ":2: bad character U+007D '}'"},
		{"<h1>{{.T.Title}}</h1>\n{{if .Reason}}\n  <p>{{.Catgory}}</p>{{end}}\n", p + ":4:15: forward.block_page.template: " + tp + ":3:8: unknown field .Catgory"},
		{"<h1>{{.T.Titel}}</h1>\n", p + ":4:15: forward.block_page.template: " + tp + ":1:7: unknown field .T.Titel"},
	} {
		write("page.html", c.tmpl)
		write("policy.yaml", "forward:\n  listen: [\"127.0.0.1:0\"]\n  block_page:\n    template: page.html\n")
		out, errOut, code := runCLI(t, "validate", "--config", p)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("template %q: exit %d, want 1 and %q in:\n%s%s", c.tmpl, code, c.want, out, errOut)
		}
	}

	write("page.html", "<h1>{{.T.Title}}</h1><p>{{.URL}}</p>\n")
	write("policy.yaml", "forward:\n  block_page: {template: page.html, lang: [fr, it], unblock_url: \"https://h.example/?s={site}\"}\n")
	_, errOut, code := runCLI(t, "validate", "--config", p)
	for _, want := range []string{
		p + `:2:48: forward.block_page.lang[1]: no block page translation for "it" (shipped: de, en, es, fr)`,
		p + ":2:66: forward.block_page.unblock_url: unknown placeholder {site}",
	} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, want 1 and %q in:\n%s", code, want, errOut)
		}
	}

	write("policy.yaml", "forward:\n  block_page: {template: nowhere.html}\n")
	_, errOut, code = runCLI(t, "validate", "--config", p)
	want := p + ":2:26: forward.block_page.template: cannot read " + filepath.Join(dir, "nowhere.html") + ": no such file or directory"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}

	write("policy.yaml", "forward:\n  block_page: {template: page.html, lang: [de], unblock_url: \"https://h.example/?s={url}&u={user}\"}\n")
	if out, errOut, code := runCLI(t, "validate", "--config", p); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("a good block page: exit %d\n%s%s", code, out, errOut)
	}
}
