package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/portcullis/portcullis/internal/report"
)

// logFiles is the repeatable --log flag.
type logFiles []string

func (l *logFiles) String() string     { return strings.Join(*l, ",") }
func (l *logFiles) Set(v string) error { *l = append(*l, v); return nil }

func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report", stderr)
	var logs logFiles
	fs.Var(&logs, "log", "access log to read (json, combined or squid; .gz too); repeat for several")
	since := fs.String("since", "", "only entries from then on: a duration back from now (24h, 7d) or an RFC 3339 time")
	format := fs.String("format", "html", "output format: html or csv")
	top := fs.Int("top", report.DefaultTop, "rows per top list")
	out := fs.String("out", "", "write the report to this file (default: standard output)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	logs = append(logs, pos...)
	if len(logs) == 0 {
		fmt.Fprintln(stderr, "portcullis report: name an access log with --log FILE")
		return 2
	}
	if *format != "html" && *format != "csv" {
		fmt.Fprintf(stderr, "portcullis report: --format: want html or csv, got %q\n", *format)
		return 2
	}
	if *top <= 0 {
		fmt.Fprintf(stderr, "portcullis report: --top: want a positive number, got %d\n", *top)
		return 2
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "portcullis report: --since:", err)
		return 2
	}
	var total int64
	for _, name := range logs {
		st, err := os.Stat(name)
		if err != nil {
			fmt.Fprintln(stderr, "portcullis report:", err)
			return 1
		}
		total += st.Size()
	}
	opts := report.Options{Since: from, Top: *top}
	var bar *progressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = &progressBar{w: f, total: total}
		opts.Progress = bar.update
		bar.draw(0)
	}
	b := report.New(opts)
	for _, name := range logs {
		if err := readLog(b, name); err != nil {
			bar.clear()
			fmt.Fprintln(stderr, "portcullis report:", err)
			return 1
		}
	}
	bar.finish()
	r := b.Report()
	for _, p := range r.Problems {
		fmt.Fprintln(stderr, "portcullis report: skipped:", p)
	}
	if r.Skipped > uint64(len(r.Problems)) {
		fmt.Fprintf(stderr, "portcullis report: skipped %d malformed lines in all\n", r.Skipped)
	}
	w := stdout
	var file *os.File
	if *out != "" {
		if file, err = os.Create(*out); err != nil {
			fmt.Fprintln(stderr, "portcullis report:", err)
			return 1
		}
		w = file
	}
	bw := bufio.NewWriter(w)
	if *format == "csv" {
		err = r.WriteCSV(bw)
	} else {
		err = r.WriteHTML(bw)
	}
	err = errors.Join(err, bw.Flush())
	if file != nil {
		err = errors.Join(err, file.Close())
	}
	if err != nil {
		fmt.Fprintln(stderr, "portcullis report:", err)
		return 1
	}
	return 0
}

func readLog(b *report.Builder, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return b.Read(name, f)
}

// parseSince reads --since: "" (no bound), a duration back from now ("24h", "90m",
// or whole days "7d"), or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want a duration back from now (24h, 7d) or an RFC 3339 time (2026-11-26T08:00:00Z), got %q", s)
}

// progressBar draws how much of the logs was read on a terminal, at most ten times a
// second.
type progressBar struct {
	w     io.Writer
	total int64
	drawn time.Time
}

func (p *progressBar) update(read int64) {
	if time.Since(p.drawn) >= 100*time.Millisecond {
		p.draw(read)
	}
}

func (p *progressBar) draw(read int64) {
	p.drawn = time.Now()
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(read)/float64(p.total), 1)
	}
	const width = 30
	filled := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %s / %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		frac*100, mib(read), mib(p.total))
}

// finish draws the bar full and ends its line; nil does nothing.
func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.draw(p.total)
	fmt.Fprintln(p.w)
}

// clear ends the bar's line before an error; nil does nothing.
func (p *progressBar) clear() {
	if p != nil {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

var _ flag.Value = (*logFiles)(nil)
