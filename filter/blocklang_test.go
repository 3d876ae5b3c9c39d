package filter

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestBlockTranslationsComplete: every shipped translation fills every field of
// BlockText, and English, French, German and Spanish are shipped.
func TestBlockTranslationsComplete(t *testing.T) {
	texts, err := blockTexts()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"de", "en", "es", "fr"} {
		if texts[want] == nil {
			t.Errorf("no %s translation (have %v)", want, BlockLanguages())
		}
	}
	for lang, tx := range texts {
		v := reflect.ValueOf(*tx)
		for i := range v.NumField() {
			if v.Field(i).String() == "" {
				t.Errorf("%s: %s is empty", lang, v.Type().Field(i).Name)
			}
		}
	}
	if texts["fr"].Title == texts["en"].Title || texts["de"].Title == texts["es"].Title {
		t.Error("translations are not translated")
	}
}

// TestBlockPageLanguageNegotiation: the language comes from Accept-Language among
// the shipped translations, by quality then order, a region falling back to its
// language; then the first of the policy's languages; then English.
func TestBlockPageLanguageNegotiation(t *testing.T) {
	fr, err := NewBlockPageWith(BlockPageOptions{Lang: []string{"fr", "en"}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewBlockPage()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bp     *BlockPage
		accept string
		want   string
	}{
		{fr, "fr", "fr"},
		{fr, "de-CH;q=0.9,es;q=0.8", "de"},
		{fr, "es;q=0.5, de-AT;q=0.9", "de"},
		{fr, "ES", "es"},
		{fr, "it,pt-BR", "fr"},
		{fr, "", "fr"},
		{fr, "de;q=0, es;q=0.1", "es"},
		{fr, "*", "fr"},
		{fr, "en-GB,en;q=0.9", "en"},
		{fr, "it, *;q=0.1", "fr"},
		{fr, "de;q=abc,es;q=0.2", "es"},
		{plain, "it", "en"},
		{plain, "fr-CA", "fr"},
	} {
		if got := c.bp.Language(c.accept); got != c.want {
			t.Errorf("lang %v, Accept-Language %q: %s, want %s", c.bp.lang, c.accept, got, c.want)
		}
	}
	if _, err := NewBlockPageWith(BlockPageOptions{Lang: []string{"xx"}}); err == nil || !strings.Contains(err.Error(), `"xx"`) {
		t.Errorf("unknown language: %v", err)
	}
}

// TestBlockPageTranslated: the built-in page and the text page are in the
// request's language, with <html lang> set.
func TestBlockPageTranslated(t *testing.T) {
	bp, err := NewBlockPage()
	if err != nil {
		t.Fatal(err)
	}
	info := testBlockInfo()
	info.AcceptLanguage = "de-DE,de;q=0.9"
	var html, text strings.Builder
	if err := bp.WriteHTML(&html, info); err != nil {
		t.Fatal(err)
	}
	if err := bp.WriteText(&text, info); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<html lang="de">`, "Diese Seite ist gesperrt", "<dt>Kategorie</dt>", "<title>Gesperrt: evil.example</title>"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("German page lacks %q:\n%s", want, html.String())
		}
	}
	for _, want := range []string{"Gesperrt von Portcullis", "Regel: no-social", "Zeit: 2026-11-26 09:30:00 UTC"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("German text lacks %q:\n%s", want, text.String())
		}
	}
}

// TestBlockPageCustomTemplate: a template renders every documented field, escaped.
func TestBlockPageCustomTemplate(t *testing.T) {
	tmpl := `<html lang="{{.Lang}}"><h1>{{.T.Title}}</h1>
<p id=u>{{.URL}}</p><p id=h>{{.Host}}</p><p id=r>{{.Rule}}</p><p id=c>{{.Category}}</p>
<p id=why>{{.Reason}}</p><p id=who>{{.User}}</p><p id=t>{{.Time}}</p><p id=ask>{{.Contact}}</p>
{{with .UnblockURL}}<a href="{{.}}">{{$.T.Unblock}}</a>{{end}}</html>`
	bp, err := NewBlockPageWith(BlockPageOptions{
		Template: tmpl, TemplateName: "school.html", Lang: []string{"es"},
		Location:   time.FixedZone("CET", 3600),
		UnblockURL: "https://help.school.example/unblock?site={url}&cat={category}&rule={rule}&who={user}",
	})
	if err != nil {
		t.Fatal(err)
	}
	info := testBlockInfo()
	info.User = "alice&bob"
	var sb strings.Builder
	if err := bp.WriteHTML(&sb, info); err != nil {
		t.Fatal(err)
	}
	page := sb.String()
	if strings.Contains(page, "<script>") {
		t.Fatalf("not escaped:\n%s", page)
	}
	for _, want := range []string{
		`<html lang="es"><h1>Esta página está bloqueada</h1>`,
		`<p id=u>http://evil.example/&lt;script&gt;alert(1)&lt;/script&gt;?a=&#34;b&#34;</p>`,
		`<p id=h>evil.example</p>`, `<p id=r>no-social</p>`, `<p id=c>social media</p>`,
		`<p id=why>Social media is blocked during lessons &amp; exams</p>`, `<p id=who>alice&amp;bob</p>`,
		`<p id=t>2026-11-26 10:30:00 CET</p>`, `<p id=ask>Ask the IT office, room 12</p>`,
		`<a href="https://help.school.example/unblock?site=http%3A%2F%2Fevil.example%2F%3Cscript%3Ealert%281%29%3C%2Fscript%3E%3Fa%3D%22b%22&amp;cat=social&#43;media&amp;rule=no-social&amp;who=alice%26bob">Solicitar el desbloqueo de este sitio</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
}

// TestBlockPageTemplateErrors: a template that does not parse, or reads a field
// the page has not (even in a branch the sample would not take), is refused with
// its name, line and column.
func TestBlockPageTemplateErrors(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{"<p>\n{{.URL}\n", "page.html:2: bad character U+007D '}'"},
		{"<p>\n\n  {{.Rule}} {{.Nope}}</p>", "page.html:3:15: unknown field .Nope"},
		{"{{if .Category}}\n{{.T.Tittle}}{{end}}", "page.html:2:3: unknown field .T.Tittle"},
		{"{{range .URL}}{{end}}", "page.html:1:"},
		{`{{if eq .Rule "never-the-sample"}}{{.Nope}}{{end}}`, "page.html:1:37: unknown field .Nope"},
		{`{{define "foot"}}{{.Contcat}}{{end}}{{template "foot" .}}`, "page.html:1:20: unknown field .Contcat"},
		{"{{with .URL}}{{$.Who}}{{end}}", "page.html:1:16: unknown field .Who"},
		{"{{frobnicate .URL}}", "page.html:1: function \"frobnicate\" not defined"},
		{`<a href="{{.URL}}`, "page.html: ends in a non-text context"},
	} {
		_, err := NewBlockPageWith(BlockPageOptions{Template: c.tmpl, TemplateName: "page.html"})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("template %q: error %v, want it to start with %q", c.tmpl, err, c.want)
		}
	}
}

// TestCheckUnblockURL: unknown placeholders and non-http URLs are refused.
func TestCheckUnblockURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://h.example/u?url={url}&c={category}&r={rule}&u={user}&h={host}&w={reason}": "",
		"https://h.example/u?x={site}": "unknown placeholder {site}",
		"javascript:alert({url})":      "not an absolute http:// or https:// URL",
		"/relative?u={url}":            "not an absolute http:// or https:// URL",
		"https://h.example/%zz":        "not a URL",
	} {
		err := CheckUnblockURL(in)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckUnblockURL(%q) = %v, want %q", in, err, want)
		}
	}
}
