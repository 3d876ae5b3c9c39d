package filter

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func testBlockInfo() *BlockInfo {
	return &BlockInfo{
		URL:      `http://evil.example/<script>alert(1)</script>?a="b"`,
		Host:     "evil.example",
		Rule:     "no-social",
		Category: "social media",
		Reason:   "Social media is blocked during lessons & exams",
		Contact:  "Ask the IT office, room 12",
		Time:     time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
	}
}

func TestBlockPageHTMLEscapesAndNamesEverything(t *testing.T) {
	bp, err := NewBlockPage()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := bp.WriteHTML(&sb, testBlockInfo()); err != nil {
		t.Fatal(err)
	}
	page := sb.String()
	if strings.Contains(page, "<script>") {
		t.Fatalf("URL not escaped:\n%s", page)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"<title>Blocked: evil.example</title>",
		"no-social", "social media", "lessons &amp; exams",
		"Ask the IT office, room 12", "2026-11-26 09:30:00 UTC",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestBlockPageTextNoControlCharacters(t *testing.T) {
	bp, err := NewBlockPage()
	if err != nil {
		t.Fatal(err)
	}
	info := testBlockInfo()
	info.URL = "http://a.example/x\r\nRule: forged"
	info.Contact = ""
	var sb strings.Builder
	if err := bp.WriteText(&sb, info); err != nil {
		t.Fatal(err)
	}
	text := sb.String()
	if strings.Contains(text, "\nRule: forged") {
		t.Fatalf("forged line in text page:\n%s", text)
	}
	for _, want := range []string{"URL: http://a.example/x  Rule: forged\n", "Category: social media\n", "Rule: no-social\n", "ask the person who runs this network"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestAcceptsHTML(t *testing.T) {
	cases := map[string]bool{
		"":    false,
		"*/*": false,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": true,
		"application/xhtml+xml":      true,
		"text/html;q=0":              false,
		"application/json, text/*":   false,
		"text/plain, text/html;q=.5": true,
	}
	for accept, want := range cases {
		if got := AcceptsHTML(accept); got != want {
			t.Errorf("AcceptsHTML(%q) = %v, want %v", accept, got, want)
		}
	}
}

func TestBlockPageServeNegotiates(t *testing.T) {
	bp, err := NewBlockPage()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, accept, ctype string
		body                  bool
	}{
		{http.MethodGet, "text/html", "text/html; charset=utf-8", true},
		{http.MethodGet, "*/*", "text/plain; charset=utf-8", true},
		{http.MethodHead, "text/html", "text/html; charset=utf-8", false},
	} {
		r := httptest.NewRequest(tc.method, "http://evil.example/", nil)
		r.Header.Set("Accept", tc.accept)
		w := httptest.NewRecorder()
		bp.Serve(w, r, http.StatusForbidden, testBlockInfo())
		if w.Code != http.StatusForbidden || w.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: got %d %q", tc.method, tc.accept, w.Code, w.Header().Get("Content-Type"))
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Length") == "" {
			t.Errorf("%s %s: headers %v", tc.method, tc.accept, w.Header())
		}
		if got := w.Body.Len() > 0; got != tc.body {
			t.Errorf("%s %s: body present %v, want %v", tc.method, tc.accept, got, tc.body)
		}
	}
}

// TestBlockPageTimeZone: a block page built for a zone shows the time there, with the
// zone's abbreviation, in both renderings.
func TestBlockPageTimeZone(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	bp, err := NewBlockPageIn(tokyo)
	if err != nil {
		t.Fatal(err)
	}
	var html, text strings.Builder
	if err := bp.WriteHTML(&html, testBlockInfo()); err != nil {
		t.Fatal(err)
	}
	if err := bp.WriteText(&text, testBlockInfo()); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{html.String(), text.String()} {
		if !strings.Contains(page, "2026-11-26 18:30:00 JST") {
			t.Errorf("page lacks the Tokyo time:\n%s", page)
		}
	}
}
