package filter

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed blockpage/page.html
var blockPageHTML string

// BlockInfo is what a block page says about one refused request.
type BlockInfo struct {
	URL            string    // the blocked URL, or "host:port" for a CONNECT
	Host           string    // the blocked host, shown in the title
	Rule           string    // the deciding rule's name
	Category       string    // the rule's category, "" when none
	Reason         string    // the rule's reason, "" when none
	Contact        string    // the policy's contact line, "" for a generic hint
	User           string    // the signed-in user, "" when none
	AcceptLanguage string    // the request's Accept-Language, which picks the page's language
	Time           time.Time // when the request was refused
}

// BlockPageOptions configures a block page (NewBlockPageWith).
type BlockPageOptions struct {
	// Location is the zone times are shown in (the policy's). Nil: UTC.
	Location *time.Location
	// Template is an html/template text executed with a BlockView. "": the
	// built-in page.
	Template string
	// TemplateName names the template in errors (its file). Default "blockpage".
	TemplateName string
	// Lang is the languages to use, in order, when the request's Accept-Language
	// names no shipped translation (BlockLanguages); English after them.
	Lang []string
	// UnblockURL is the "ask for this site to be unblocked" link, with
	// placeholders {url}, {host}, {category}, {rule}, {reason} and {user}
	// (CheckUnblockURL). "": no link.
	UnblockURL string
}

// BlockPage renders the page shown for a blocked request: HTML for browsers, plain
// text for every other client, in the language the request prefers among the
// shipped translations. It is built once (NewBlockPageWith) and is safe for
// concurrent use; every value is escaped for the format it is written in.
type BlockPage struct {
	tmpl    *template.Template
	loc     *time.Location // the zone times are shown in
	texts   map[string]*BlockText
	lang    []string
	unblock string
	bufs    sync.Pool // *bytes.Buffer
}

// NewBlockPage builds the built-in page; times are shown in UTC.
func NewBlockPage() (*BlockPage, error) { return NewBlockPageIn(time.UTC) }

// NewBlockPageIn builds the built-in page; times are shown in loc (the policy's
// time zone), with the zone's abbreviation.
func NewBlockPageIn(loc *time.Location) (*BlockPage, error) {
	return NewBlockPageWith(BlockPageOptions{Location: loc})
}

// NewBlockPageWith builds a block page from o. A template that does not parse,
// reads a field BlockView has not, or fails on a sample page is refused with an
// error "NAME:LINE[:COL]: message"; so is a language no translation is shipped for,
// or a malformed unblock URL.
func NewBlockPageWith(o BlockPageOptions) (*BlockPage, error) {
	texts, err := blockTexts()
	if err != nil {
		return nil, err
	}
	for _, l := range o.Lang {
		if _, ok := texts[l]; !ok {
			return nil, fmt.Errorf("no block page translation for %q (shipped: %s)", l, strings.Join(BlockLanguages(), ", "))
		}
	}
	if o.UnblockURL != "" {
		if err := CheckUnblockURL(o.UnblockURL); err != nil {
			return nil, err
		}
	}
	name, text := cmp.Or(o.TemplateName, "blockpage"), o.Template
	if text == "" {
		text = blockPageHTML
	}
	t, err := parseBlockTemplate(name, text)
	if err != nil {
		return nil, err
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	return &BlockPage{tmpl: t, loc: loc, texts: texts, lang: slices.Clone(o.Lang), unblock: o.UnblockURL,
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}, nil
}

// Language returns the language a page for this Accept-Language value is shown in.
func (b *BlockPage) Language(acceptLanguage string) string {
	return negotiate(acceptLanguage, b.texts, b.lang)
}

// formatTime is the one time format both renderings use.
func (b *BlockPage) formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(b.loc).Format("2006-01-02 15:04:05 MST")
}

// view is the template's data for info.
func (b *BlockPage) view(info *BlockInfo) *BlockView {
	lang := b.Language(info.AcceptLanguage)
	v := &BlockView{
		URL: info.URL, Host: info.Host, Rule: info.Rule, Category: info.Category, Reason: info.Reason,
		Contact: info.Contact, User: info.User, Time: b.formatTime(info.Time), Lang: lang, T: *b.texts[lang],
	}
	v.UnblockURL = fillUnblock(b.unblock, v)
	return v
}

// WriteHTML writes the HTML page for info to w.
func (b *BlockPage) WriteHTML(w io.Writer, info *BlockInfo) error {
	return b.tmpl.Execute(w, b.view(info))
}

// WriteText writes the plain-text page for info to w, in the same language as the
// HTML page. Control characters in the values are replaced so that a crafted URL
// cannot forge extra lines.
func (b *BlockPage) WriteText(w io.Writer, info *BlockInfo) error {
	v := b.view(info)
	var sb strings.Builder
	sb.WriteString(v.T.TextHeader)
	sb.WriteString("\n\n")
	line := func(name, v string) {
		if v == "" {
			return
		}
		sb.WriteString(name)
		sb.WriteString(": ")
		sb.WriteString(textSafe(v))
		sb.WriteByte('\n')
	}
	line("URL", v.URL) // the same word in every shipped language
	line(v.T.Category, v.Category)
	line(v.T.Reason, v.Reason)
	line(v.T.Rule, v.Rule)
	line(v.T.User, v.User)
	line(v.T.Time, v.Time)
	sb.WriteByte('\n')
	if v.Contact != "" {
		sb.WriteString(textSafe(v.Contact))
	} else {
		sb.WriteString(v.T.Hint)
	}
	sb.WriteByte('\n')
	if v.UnblockURL != "" {
		sb.WriteString(v.T.Unblock)
		sb.WriteString(": ")
		sb.WriteString(textSafe(v.UnblockURL))
		sb.WriteByte('\n')
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// textSafe replaces control characters (CR, LF, ESC…) with spaces.
func textSafe(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// AcceptsHTML reports whether an Accept header value explicitly asks for HTML
// (text/html or application/xhtml+xml with a non-zero quality), as browsers do for
// page loads. A bare "*/*" (curl, scripts, API clients) gets plain text.
func AcceptsHTML(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || (mt != "text/html" && mt != "application/xhtml+xml") {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
				continue
			}
		}
		return true
	}
	return false
}

// Serve writes a complete block page response with the given status (normally 403):
// HTML when r accepts it, plain text otherwise, in the language r prefers (its
// Accept-Language sets info.AcceptLanguage), never cached, with a Content-Length.
// The body is omitted for HEAD requests.
func (b *BlockPage) Serve(w http.ResponseWriter, r *http.Request, status int, info *BlockInfo) {
	info.AcceptLanguage = r.Header.Get("Accept-Language")
	buf := b.bufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			b.bufs.Put(buf)
		}
	}()
	ctype := "text/plain; charset=utf-8"
	var err error
	if AcceptsHTML(r.Header.Get("Accept")) {
		ctype = "text/html; charset=utf-8"
		err = b.WriteHTML(buf, info)
	} else {
		err = b.WriteText(buf, info)
	}
	lang := b.Language(info.AcceptLanguage)
	if err != nil {
		buf.Reset()
		ctype = "text/plain; charset=utf-8"
		buf.WriteString("Blocked by Portcullis.\n")
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Language", lang)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
