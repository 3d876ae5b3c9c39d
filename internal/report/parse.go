package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// record is what a report needs of one access-log line, whatever its format.
type record struct {
	time      time.Time
	client    string
	user      string // "" when nobody signed in
	host      string
	category  string // json only
	userAgent string // json and combined
	blocked   bool
	dns       bool
	bytes     int64 // bytes sent to the client
}

// parseLine parses one line of any access-log format: a JSON object, Squid's native
// format (it starts with seconds.milliseconds) or the combined format.
func parseLine(line []byte) (record, error) {
	switch {
	case len(line) > 0 && line[0] == '{':
		return parseJSON(line)
	case isSquidTime(line):
		return parseSquid(line)
	}
	return parseCombined(line)
}

// jsonLine holds the fields of the json format a report reads.
type jsonLine struct {
	Time      time.Time `json:"time"`
	Door      string    `json:"door"`
	Client    string    `json:"client"`
	User      string    `json:"user"`
	URL       string    `json:"url"`
	Action    string    `json:"action"`
	Category  string    `json:"category"`
	BytesOut  int64     `json:"bytes_out"`
	UserAgent string    `json:"user_agent"`
}

func parseJSON(line []byte) (record, error) {
	var j jsonLine
	if err := json.Unmarshal(line, &j); err != nil {
		return record{}, fmt.Errorf("json: %w", err)
	}
	if j.Time.IsZero() {
		return record{}, errors.New("json: time: missing")
	}
	return record{
		time: j.Time, client: j.Client, user: j.User, host: accesslog.HostOf(j.URL), category: j.Category,
		userAgent: j.UserAgent, blocked: j.Action == "block" || j.Action == "refuse", dns: j.Door == "dns",
		bytes: j.BytesOut,
	}, nil
}

// isSquidTime reports whether line starts with a squid timestamp, "123.456 ".
func isSquidTime(line []byte) bool {
	dot := bytes.IndexByte(line, '.')
	sp := bytes.IndexByte(line, ' ')
	if dot <= 0 || sp != dot+4 {
		return false
	}
	for i, c := range line[:sp] {
		if i != dot && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// parseSquid parses Squid's native format as admin writes it:
//
//	time elapsed client RESULT/STATUS bytes method URL user HIER/peer type
func parseSquid(line []byte) (record, error) {
	var f [10][]byte
	n := 0
	for rest := line; ; n++ {
		rest = bytes.TrimLeft(rest, " ")
		if len(rest) == 0 {
			break
		}
		if n == len(f) {
			return record{}, fmt.Errorf("squid: want 10 fields, got more")
		}
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			f[n], rest = rest, nil
			continue
		}
		f[n], rest = rest[:i], rest[i+1:]
	}
	if n != len(f) {
		return record{}, fmt.Errorf("squid: want 10 fields, got %d", n)
	}
	ts, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return record{}, fmt.Errorf("squid: time: %q is no timestamp", f[0])
	}
	elapsed, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return record{}, fmt.Errorf("squid: elapsed: %q is no number", f[1])
	}
	result, _, ok := bytes.Cut(f[3], []byte{'/'})
	if !ok {
		return record{}, fmt.Errorf("squid: result: want CODE/STATUS, got %q", f[3])
	}
	size, err := strconv.ParseInt(string(f[4]), 10, 64)
	if err != nil {
		return record{}, fmt.Errorf("squid: bytes: %q is no number", f[4])
	}
	// The line carries when the transaction ended: the request arrived elapsed
	// milliseconds earlier. Millisecond arithmetic avoids float rounding.
	ms := int64(ts*1000+0.5) - elapsed
	url := string(f[6])
	return record{
		time:    time.UnixMilli(ms).UTC(),
		client:  dash(string(f[2])),
		user:    dash(unescapeSquid(string(f[7]))),
		host:    accesslog.HostOf(url),
		blocked: string(result) == "TCP_DENIED",
		dns:     strings.HasPrefix(url, "dns://"),
		bytes:   size,
	}, nil
}

// dash maps the formats' "-" for an empty field to "".
func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// unescapeSquid undoes appendSquidField's %XX escapes.
func unescapeSquid(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseCombined parses the combined format as admin writes it:
//
//	client - user [02/Jan/2006:15:04:05 -0700] "METHOD URL PROTO" status bytes "referer" "user agent"
//
// A DNS query's request line is "QTYPE dns://NAME/?… DNS".
func parseCombined(line []byte) (record, error) {
	s := string(bytes.TrimRight(line, "\r\n"))
	client, rest, ok := strings.Cut(s, " ")
	if !ok {
		return record{}, errors.New("combined: want client, got the whole line")
	}
	rest, ok = strings.CutPrefix(rest, "- ")
	if !ok {
		return record{}, errors.New(`combined: ident: want "-"`)
	}
	user, rest, ok := strings.Cut(rest, " [")
	if !ok {
		return record{}, errors.New("combined: time: want [time]")
	}
	stamp, rest, ok := strings.Cut(rest, `] "`)
	if !ok {
		return record{}, errors.New(`combined: time: want "] \""`)
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", stamp)
	if err != nil {
		return record{}, fmt.Errorf("combined: time: %q: %v", stamp, err)
	}
	request, rest, err := cutQuoted(rest)
	if err != nil {
		return record{}, fmt.Errorf("combined: request: %v", err)
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return record{}, errors.New("combined: want status and bytes after the request")
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		return record{}, fmt.Errorf("combined: status: %q is no number", f[0])
	}
	var n int64
	if f[1] != "-" {
		if n, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return record{}, fmt.Errorf("combined: bytes: %q is no number", f[1])
		}
	}
	var ua string
	if _, after, ok := strings.Cut(rest, ` "`); ok { // the referer
		if _, after, err = cutQuoted(after); err == nil {
			if after, ok = strings.CutPrefix(after, ` "`); ok {
				if ua, _, err = cutQuoted(after); err != nil {
					ua = ""
				}
			}
		}
	}
	words := strings.Fields(request)
	var url string
	if len(words) >= 2 {
		url = words[1]
	}
	return record{
		time:      t,
		client:    dash(client),
		user:      dash(unescapeCombined(user)),
		host:      accesslog.HostOf(url),
		userAgent: dash(ua),
		blocked:   f[0] == "403",
		dns:       len(words) == 3 && words[2] == "DNS",
		bytes:     n,
	}, nil
}

// cutQuoted returns the text before the closing quote of a field whose opening quote
// was already consumed (unescaped), and what follows the closing quote.
func cutQuoted(s string) (field, rest string, err error) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return unescapeCombined(s[:i]), s[i+1:], nil
		}
	}
	return "", "", errors.New("no closing quote")
}

// unescapeCombined undoes appendQuoted's and appendBare's escapes: \" \\ \xHH.
func unescapeCombined(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if s[i+1] == 'x' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}
