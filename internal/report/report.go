// Package report builds a traffic report (users, client addresses, categories, sites,
// blocked sites, bytes, requests per hour) from Portcullis access logs in any of their
// formats (json, combined, squid; gzip-compressed or not), line by line in bounded
// memory: every top list is a space-saving sketch (internal/topk), and the hourly
// series keeps at most MaxHours hours.
package report

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/topk"
)

// Defaults.
const (
	DefaultTop      = 20       // rows per top list
	DefaultCounters = 4096     // counters per top list's sketch
	MaxHours        = 24 * 62  // hours kept in the hourly series; older ones are summed
	maxLine         = 64 << 10 // longer lines are skipped as malformed
	maxProblems     = 10       // malformed lines reported one by one
	progressEvery   = 1 << 20  // bytes read between Progress calls
)

// Options tune a Builder.
type Options struct {
	// Since drops entries before it; zero keeps every entry.
	Since time.Time
	// Top is how many rows each top list shows; 0 means DefaultTop.
	Top int
	// Counters is each top list's sketch size; 0 means DefaultCounters. Counts are exact
	// while a list saw fewer distinct keys.
	Counters int
	// Progress, when set, is called with the total bytes read so far (of the files as
	// stored: compressed bytes for a .gz) about every MiB, and once at the end of each file.
	Progress func(read int64)
}

// Totals are the counts of one row.
type Totals struct {
	Requests uint64 // entries (HTTP requests, CONNECT tunnels, DNS queries)
	Blocked  uint64 // of which refused by the policy
	Bytes    uint64 // bytes sent to clients
}

func (t *Totals) add(r *record) {
	t.Requests++
	if r.blocked {
		t.Blocked++
	}
	if r.bytes > 0 {
		t.Bytes += uint64(r.bytes)
	}
}

// list is one top list being counted.
type list struct {
	id, title, key, detail string
	byBlocked              bool // ranked by blocked entries (only those are added)
	note                   string
	sk                     *topk.Sketch[string, Totals]
}

// Builder reads access logs and accumulates a report. Not safe for concurrent use.
type Builder struct {
	opts     Options
	read     int64
	lastTick int64

	files                      []string
	lines, entries, skipped    uint64
	before, dns                uint64
	first, last                time.Time
	total                      Totals
	hours                      map[int64]*Totals // unix hour → counts, at most MaxHours
	earlier                    Totals            // hours dropped from the series
	earliestKept               int64
	problems                   []string
	users, clients, sites      *list
	blocked, userBlocks, cats  *list
	agents                     *list
	sawCategory, sawUserAgents bool
}

// New returns an empty Builder.
func New(opts Options) *Builder {
	if opts.Top <= 0 {
		opts.Top = DefaultTop
	}
	if opts.Counters <= 0 {
		opts.Counters = DefaultCounters
	}
	mk := func(id, title, key, detail string, byBlocked bool) *list {
		return &list{id: id, title: title, key: key, detail: detail, byBlocked: byBlocked,
			sk: topk.New[string, Totals](opts.Counters)}
	}
	return &Builder{
		opts:       opts,
		hours:      make(map[int64]*Totals),
		users:      mk("user", "Top users", "user", "", false),
		clients:    mk("client", "Top client addresses", "client", "", false),
		sites:      mk("site", "Top sites", "site", "", false),
		blocked:    mk("blocked_site", "Top blocked sites", "site", "", true),
		userBlocks: mk("blocked_by_user", "Blocked sites per user", "user", "site", true),
		cats:       mk("category", "Categories", "category", "", false),
		agents:     mk("user_agent", "Top user agents", "user agent", "", false),
	}
}

// Read reads one access log (gzip-compressed or not: the magic number decides) from r;
// name labels its problems ("access.log:12: …"). Malformed lines are skipped and
// counted; the first few are listed in the report's Problems. It fails only when r
// does (or the gzip stream is corrupt).
func (b *Builder) Read(name string, r io.Reader) error {
	b.files = append(b.files, name)
	cr := &countingReader{r: r, b: b}
	br := bufio.NewReaderSize(cr, 64<<10)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		in = zr
	}
	lr := bufio.NewReaderSize(in, maxLine)
	lineNo := 0
	for {
		line, err := lr.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			lineNo++
			b.lines++
			b.problem(name, lineNo, fmt.Sprintf("line longer than %d KiB", maxLine>>10))
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of it
				_, err = lr.ReadSlice('\n')
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		if len(line) > 0 {
			lineNo++
			b.add(name, lineNo, line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if b.opts.Progress != nil {
		b.opts.Progress(b.read)
	}
	return nil
}

// countingReader counts the bytes read for Progress.
type countingReader struct {
	r io.Reader
	b *Builder
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.read += int64(n)
	if c.b.opts.Progress != nil && c.b.read-c.b.lastTick >= progressEvery {
		c.b.lastTick = c.b.read
		c.b.opts.Progress(c.b.read)
	}
	return n, err
}

func (b *Builder) problem(name string, line int, msg string) {
	b.skipped++
	if len(b.problems) < maxProblems {
		b.problems = append(b.problems, fmt.Sprintf("%s:%d: %s", name, line, msg))
	}
}

func (b *Builder) add(name string, lineNo int, line []byte) {
	b.lines++
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	r, err := parseLine(line)
	if err != nil {
		b.problem(name, lineNo, err.Error())
		return
	}
	if !b.opts.Since.IsZero() && r.time.Before(b.opts.Since) {
		b.before++
		return
	}
	b.entries++
	if b.first.IsZero() || r.time.Before(b.first) {
		b.first = r.time
	}
	if r.time.After(b.last) {
		b.last = r.time
	}
	b.total.add(&r)
	if r.dns {
		b.dns++
	}
	b.addHour(&r)
	if r.user != "" {
		b.users.add(r.user, &r)
		if r.blocked {
			b.userBlocks.add(r.user+"\x00"+r.host, &r)
		}
	}
	if r.client != "" {
		b.clients.add(r.client, &r)
	}
	if r.host != "" {
		b.sites.add(r.host, &r)
		if r.blocked {
			b.blocked.add(r.host, &r)
		}
	}
	if r.category != "" {
		b.sawCategory = true
		b.cats.add(r.category, &r)
	}
	if r.userAgent != "" {
		b.sawUserAgents = true
		b.agents.add(r.userAgent, &r)
	}
}

func (l *list) add(key string, r *record) {
	if len(key) > 512 {
		key = key[:512]
	}
	l.sk.Add(key, 1).add(r)
}

func (b *Builder) addHour(r *record) {
	h := r.time.Unix() / 3600
	if h < b.earliestKept {
		b.earlier.add(r)
		return
	}
	t := b.hours[h]
	if t == nil {
		if len(b.hours) >= MaxHours {
			oldest := h
			for k := range b.hours {
				oldest = min(oldest, k)
			}
			if oldest == h { // older than every hour kept
				b.earlier.add(r)
				return
			}
			o := b.hours[oldest]
			b.earlier.Requests += o.Requests
			b.earlier.Blocked += o.Blocked
			b.earlier.Bytes += o.Bytes
			delete(b.hours, oldest)
			b.earliestKept = oldest + 1
		}
		t = &Totals{}
		b.hours[h] = t
	}
	t.add(r)
}

// Report is a finished report.
type Report struct {
	Files    []string
	Since    time.Time // zero: no lower bound
	First    time.Time // first entry counted (zero when none)
	Last     time.Time // last entry counted
	Lines    uint64    // lines read
	Entries  uint64    // entries counted
	Skipped  uint64    // malformed lines
	Before   uint64    // entries before Since
	DNS      uint64    // of the entries, DNS queries
	Total    Totals
	Hours    []Hour
	Earlier  Totals   // entries in hours dropped from Hours (more than MaxHours)
	Lists    []List   // top lists
	Problems []string // the first malformed lines, "FILE:LINE: message"
}

// Hour is one hour of the series.
type Hour struct {
	Start time.Time // UTC
	Totals
}

// List is one top list.
type List struct {
	ID     string // the CSV's section name: user, client, site, blocked_site, blocked_by_user, category, user_agent
	Title  string
	Key    string // what a row's Name is
	Detail string // what a row's Detail is ("" when rows have none)
	// Ranked says what orders the rows: "requests" or "blocked".
	Ranked string
	Note   string // why the list may be empty or approximate
	Rows   []Row
}

// Row is one key of a top list. Its counts may overstate by at most Overcount
// (space-saving): 0 unless the list saw more distinct keys than its counters.
type Row struct {
	Name, Detail string
	Totals
	Overcount uint64
}

// Report returns the report of what was read so far.
func (b *Builder) Report() *Report {
	r := &Report{
		Files: b.files, Since: b.opts.Since, First: b.first, Last: b.last, Lines: b.lines, Entries: b.entries,
		Skipped: b.skipped, Before: b.before, DNS: b.dns, Total: b.total, Earlier: b.earlier, Problems: b.problems,
	}
	for h, t := range b.hours {
		r.Hours = append(r.Hours, Hour{Start: time.Unix(h*3600, 0).UTC(), Totals: *t})
	}
	slices.SortFunc(r.Hours, func(a, b Hour) int { return a.Start.Compare(b.Start) })
	for _, l := range []*list{b.users, b.clients, b.cats, b.sites, b.blocked, b.userBlocks, b.agents} {
		out := List{ID: l.id, Title: l.title, Key: l.key, Detail: l.detail, Ranked: "requests"}
		if l.byBlocked {
			out.Ranked = "blocked"
		}
		switch {
		case l == b.cats && !b.sawCategory:
			out.Note = "no categories in these logs: only the json format records them"
		case l == b.agents && !b.sawUserAgents:
			out.Note = "no user agents in these logs: the squid format does not record them"
		case l == b.users && l.sk.Len() == 0:
			out.Note = "nobody signed in"
		}
		approx := false
		for _, c := range l.sk.Counters() {
			row := Row{Name: c.Key, Totals: c.Value, Overcount: c.Err}
			// The value's sums start when the key took its counter over; the rank
			// count includes the inherited part. Show the rank count as the ranked
			// column so that rows are consistent with their order.
			if l.byBlocked {
				row.Blocked = c.Count
			} else {
				row.Requests = c.Count
			}
			if c.Err > 0 {
				approx = true
			}
			if l.detail != "" {
				row.Name, row.Detail, _ = strings.Cut(c.Key, "\x00")
			}
			out.Rows = append(out.Rows, row)
		}
		slices.SortStableFunc(out.Rows, func(a, b Row) int {
			if l.byBlocked {
				return cmp.Or(cmp.Compare(b.Blocked, a.Blocked), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Detail, b.Detail))
			}
			return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Name, b.Name))
		})
		out.Rows = out.Rows[:min(len(out.Rows), b.opts.Top)]
		if approx {
			out.Note = fmt.Sprintf("more than %d distinct keys: counts may overstate by the overcount shown", l.sk.Cap())
		}
		r.Lists = append(r.Lists, out)
	}
	return r
}
