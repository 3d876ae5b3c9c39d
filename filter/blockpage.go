package filter

import (
	"bytes"
	_ "embed"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed blockpage.html
var blockPageHTML string

// BlockInfo is what a block page says about one refused request.
type BlockInfo struct {
	URL      string    // the blocked URL, or "host:port" for a CONNECT
	Host     string    // the blocked host, shown in the title
	Rule     string    // the deciding rule's name
	Category string    // the rule's category, "" when none
	Reason   string    // the rule's reason, "" when none
	Contact  string    // the policy's contact line, "" for a generic hint
	Time     time.Time // when the request was refused
}

// BlockPage renders the page shown for a blocked request: HTML for browsers, plain
// text for every other client. It is built once (NewBlockPage) and is safe for
// concurrent use; every value is escaped for the format it is written in.
type BlockPage struct {
	tmpl *template.Template
	loc  *time.Location // the zone times are shown in
	bufs sync.Pool      // *bytes.Buffer
}

// blockView is the template's data: BlockInfo with the time already formatted.
type blockView struct {
	BlockInfo
	Time string
}

// NewBlockPage parses the embedded template; times are shown in UTC.
func NewBlockPage() (*BlockPage, error) { return NewBlockPageIn(time.UTC) }

// NewBlockPageIn parses the embedded template; times are shown in loc (the
// policy's time zone), with the zone's abbreviation.
func NewBlockPageIn(loc *time.Location) (*BlockPage, error) {
	t, err := template.New("blockpage").Parse(blockPageHTML)
	if err != nil {
		return nil, err
	}
	if loc == nil {
		loc = time.UTC
	}
	return &BlockPage{tmpl: t, loc: loc, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}, nil
}

// formatTime is the one time format both renderings use.
func (b *BlockPage) formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(b.loc).Format("2006-01-02 15:04:05 MST")
}

// WriteHTML writes the HTML page for info to w.
func (b *BlockPage) WriteHTML(w io.Writer, info *BlockInfo) error {
	return b.tmpl.Execute(w, blockView{BlockInfo: *info, Time: b.formatTime(info.Time)})
}

// WriteText writes the plain-text page for info to w. Control characters in the
// values are replaced so that a crafted URL cannot forge extra lines.
func (b *BlockPage) WriteText(w io.Writer, info *BlockInfo) error {
	var sb strings.Builder
	sb.WriteString("Blocked by Portcullis, the web filter on this network.\n\n")
	line := func(name, v string) {
		if v == "" {
			return
		}
		sb.WriteString(name)
		sb.WriteString(": ")
		sb.WriteString(textSafe(v))
		sb.WriteByte('\n')
	}
	line("URL", info.URL)
	line("Category", info.Category)
	line("Reason", info.Reason)
	line("Rule", info.Rule)
	line("Time", b.formatTime(info.Time))
	sb.WriteByte('\n')
	if info.Contact != "" {
		sb.WriteString(textSafe(info.Contact))
	} else {
		sb.WriteString("If you think this is a mistake, ask the person who runs this network.")
	}
	sb.WriteByte('\n')
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
// HTML when r accepts it, plain text otherwise, never cached, with a Content-Length.
// The body is omitted for HEAD requests.
func (b *BlockPage) Serve(w http.ResponseWriter, r *http.Request, status int, info *BlockInfo) {
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
	if err != nil {
		buf.Reset()
		ctype = "text/plain; charset=utf-8"
		buf.WriteString("Blocked by Portcullis.\n")
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
