package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// statusHTML is the status page: one file, inline CSS and JS, no external resources.
// The server renders the first paint (so it works with JS off); the script then
// refreshes it from /status.json every 2 seconds.
//
//go:embed status.html
var statusHTML string

// Sparkline geometry shared by the template and the script (see status.html).
const (
	sparkW = 600
	sparkH = 90
)

type page struct {
	tmpl *template.Template
	csp  string // Content-Security-Policy admitting only the page's own script
}

func newPage() *page {
	funcs := template.FuncMap{
		"bytes":   humanBytes,
		"pct":     func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" },
		"num":     humanNumber,
		"ms":      func(f float64) string { return strconv.FormatFloat(f, 'f', msDecimals(f), 64) + " ms" },
		"ago":     ago,
		"width":   barWidth,
		"spark":   sparkPath,
		"area":    sparkArea,
		"maxOf":   maxOf,
		"pairs":   pairCounts,
		"peak":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"hasData": func(v []float64) bool { return slicesMax(v) > 0 },
	}
	return &page{
		tmpl: template.Must(template.New("status").Funcs(funcs).Parse(statusHTML)),
		csp: "default-src 'none'; style-src 'unsafe-inline'; script-src '" + scriptHash(statusHTML) + "'; " +
			"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}
}

// scriptHash is the CSP source ('sha256-…') of the page's one inline script, which has
// no template actions, so the rendered page carries it byte for byte.
func scriptHash(html string) string {
	_, rest, _ := strings.Cut(html, "<script>")
	script, _, _ := strings.Cut(rest, "</script>")
	sum := sha256.Sum256([]byte(script))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// pageView is what the template renders.
type pageView struct {
	*statusDoc
	HitRatio float64
	MaxRate  float64 // y scale of the request sparkline
	MaxLat   float64 // y scale of the latency sparkline
	BlockPct float64
}

func (p *page) render(d *statusDoc) ([]byte, error) {
	v := pageView{statusDoc: d}
	if d.Cache != nil {
		v.HitRatio = d.Cache.HitRatio()
	}
	v.MaxRate = niceCeil(slicesMax(d.Traffic.RequestsPerSecond))
	v.MaxLat = niceCeil(slicesMax(d.Traffic.P99Ms))
	if d.Traffic.Requests > 0 {
		v.BlockPct = float64(d.Traffic.Blocked) / float64(d.Traffic.Requests)
	}
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, &v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func slicesMax(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func maxOf(counts []Count) uint64 {
	var m uint64
	for _, c := range counts {
		m = max(m, c.Count)
	}
	return m
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(x float64) float64 {
	if x <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if x <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// sparkPath is an SVG path through v scaled to top; the script's spark() matches it.
func sparkPath(v []float64, top float64) string {
	if len(v) == 0 || top <= 0 {
		return ""
	}
	var b strings.Builder
	step := float64(sparkW) / float64(max(len(v)-1, 1))
	for i, x := range v {
		if i == 0 {
			b.WriteString("M")
		} else {
			b.WriteString(" L")
		}
		y := float64(sparkH) - math.Min(x/top, 1)*float64(sparkH-4)
		fmt.Fprintf(&b, "%.1f,%.1f", float64(i)*step, y)
	}
	return b.String()
}

// sparkArea closes sparkPath down to the x axis, for a filled area.
func sparkArea(v []float64, top float64) string {
	p := sparkPath(v, top)
	if p == "" {
		return ""
	}
	return p + fmt.Sprintf(" L%d,%d L0,%d Z", sparkW, sparkH, sparkH)
}

func barWidth(n, top uint64) string {
	if top == 0 {
		return "0%"
	}
	return strconv.FormatFloat(math.Max(float64(n)/float64(top)*100, 1), 'f', 1, 64) + "%"
}

func msDecimals(f float64) int {
	if f >= 100 || f == 0 {
		return 0
	}
	if f >= 10 {
		return 1
	}
	return 2
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

func humanNumber(n any) string {
	var f float64
	switch x := n.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	}
	switch {
	case f >= 1e9:
		return strconv.FormatFloat(f/1e9, 'f', 1, 64) + "G"
	case f >= 1e6:
		return strconv.FormatFloat(f/1e6, 'f', 1, 64) + "M"
	case f >= 1e4:
		return strconv.FormatFloat(f/1e3, 'f', 1, 64) + "k"
	case f == math.Trunc(f):
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// ago renders how long before now t was, coarsely ("3 min ago").
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days ago"
}

// pairCounts spells a user-and-domain list as a top list: "user → domain".
func pairCounts(us []UserCount) []Count {
	out := make([]Count, len(us))
	for i, u := range us {
		out[i] = Count{Name: u.User + " → " + u.Domain, Count: u.Count}
	}
	return out
}
