package report

import (
	_ "embed"
	"encoding/csv"
	"html/template"
	"io"
	"strconv"
	"time"
)

// WriteCSV writes the report as one CSV table with the header
//
//	section,name,detail,requests,blocked,bytes,overcount
//
// Sections: "total" (one row), "earlier" (hours beyond the series, when any), "hour"
// (name: the hour's start, RFC 3339 UTC), then one section per top list (List.ID).
// Values are written as read; a spreadsheet formula prefix (=, +, -, @) is not special.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	row := func(section, name, detail string, t Totals, over uint64) {
		cw.Write([]string{section, name, detail, u(t.Requests), u(t.Blocked), u(t.Bytes), u(over)})
	}
	cw.Write([]string{"section", "name", "detail", "requests", "blocked", "bytes", "overcount"})
	row("total", "", "", r.Total, 0)
	if r.Earlier.Requests > 0 {
		row("earlier", "", "", r.Earlier, 0)
	}
	for _, h := range r.Hours {
		row("hour", h.Start.Format(time.RFC3339), "", h.Totals, 0)
	}
	for _, l := range r.Lists {
		for _, x := range l.Rows {
			row(l.ID, x.Name, x.Detail, x.Totals, x.Overcount)
		}
	}
	cw.Flush()
	return cw.Error()
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

//go:embed report.html
var reportHTML string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":   func(v uint64) string { return strconv.FormatUint(v, 10) },
	"bytes": humanBytes,
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"pct": func(a, b uint64) string {
		if b == 0 {
			return "0%"
		}
		return strconv.FormatFloat(float64(a)*100/float64(b), 'f', 1, 64) + "%"
	},
	"width": func(a uint64, hours []Hour) string {
		var top uint64
		for _, h := range hours {
			top = max(top, h.Requests)
		}
		if top == 0 {
			return "0%"
		}
		return strconv.FormatFloat(float64(a)*100/float64(top), 'f', 1, 64) + "%"
	},
}).Parse(reportHTML))

// WriteHTML writes the report as one self-contained HTML page (no script, no external
// resource). Every value from the logs is escaped by html/template.
func (r *Report) WriteHTML(w io.Writer) error {
	return page.Execute(w, r)
}

func humanBytes(v uint64) string {
	const units = "KMGTPE"
	if v < 1024 {
		return strconv.FormatUint(v, 10) + " B"
	}
	f, i := float64(v)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i:i+1] + "iB"
}
