package accesslog

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// appendLine appends e's line in format f, newline included, and returns the extended
// buffer. Every format records every entry: DNS queries have their own mapping onto the
// HTTP formats (appendCombinedDNS, appendSquidDNS).
func appendLine(b []byte, f Format, e *Entry, stripQuery bool) []byte {
	isDNS := e.Door == "dns"
	switch {
	case f == FormatCombined && isDNS:
		return appendCombinedDNS(b, e)
	case f == FormatCombined:
		return appendCombined(b, e, stripQuery)
	case f == FormatSquid && isDNS:
		return appendSquidDNS(b, e)
	case f == FormatSquid:
		return appendSquid(b, e, stripQuery)
	}
	return appendJSON(b, e, stripQuery)
}

// appendJSON writes one JSON object. Core fields are always present; optional ones are
// omitted when empty; a DNS entry adds "rcode", the name of its status ("NXDOMAIN").
// Field names are part of the log's interface: don't rename them.
func appendJSON(b []byte, e *Entry, stripQuery bool) []byte {
	b = append(b, `{"time":"`...)
	b = appendJSONTime(b, e.Time)
	b = append(b, `","door":`...)
	b = appendJSONString(b, e.Door)
	b = append(b, `,"client":"`...)
	if e.Client.IsValid() {
		b = e.Client.AppendTo(b)
	}
	b = append(b, '"')
	b = appendJSONField(b, "user", e.User)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	head, tail := scrubURL(e.URL, stripQuery)
	b = append(b, `,"url":"`...)
	b = appendJSONRaw(b, head)
	b = appendJSONRaw(b, tail)
	b = append(b, `","action":`...)
	b = appendJSONString(b, e.Action)
	b = appendJSONField(b, "rule", e.Rule)
	b = appendJSONField(b, "category", e.Category)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	if e.Door == "dns" {
		b = append(b, `,"rcode":"`...)
		b = appendRcode(b, e.Status)
		b = append(b, '"')
	}
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Duration)/float64(time.Millisecond), 'f', 3, 64)
	b = appendJSONField(b, "upstream", e.Upstream)
	b = appendJSONField(b, "pool", e.Pool)
	b = appendJSONField(b, "cache", e.Cache)
	b = appendJSONField(b, "error", e.Error)
	b = appendJSONField(b, "proto", e.Proto)
	if e.TLS {
		b = append(b, `,"tls":true`...)
	}
	if e.Referer != "" {
		head, tail := scrubURL(e.Referer, stripQuery)
		b = append(b, `,"referer":"`...)
		b = appendJSONRaw(b, head)
		b = appendJSONRaw(b, tail)
		b = append(b, '"')
	}
	b = appendJSONField(b, "user_agent", e.UserAgent)
	b = appendJSONField(b, "content_type", e.ContentType)
	b = appendJSONField(b, "answer", e.Answer)
	return append(b, "}\n"...)
}

func appendJSONField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONRaw(b, s)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONRaw appends s escaped for the inside of a JSON string: quotes, backslashes,
// every control character (C0, DEL, C1), U+2028/U+2029, and invalid UTF-8 as U+FFFD.
func appendJSONRaw(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
			i++
			continue
		case '\n':
			b = append(b, '\\', 'n')
			i++
			continue
		case '\r':
			b = append(b, '\\', 'r')
			i++
			continue
		case '\t':
			b = append(b, '\\', 't')
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029:
			b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// appendCombined writes the Apache/nginx combined format:
//
//	%h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
//
// Quoted fields escape '"', '\' and every byte outside printable ASCII as \xHH (as
// nginx does); bare fields also escape spaces, and print "-" when empty.
func appendCombined(b []byte, e *Entry, stripQuery bool) []byte {
	b = appendCombinedHead(b, e)
	b = appendQuoted(b, e.Method)
	b = append(b, ' ')
	head, tail := scrubURL(e.URL, stripQuery)
	b = appendQuoted(b, head)
	b = appendQuoted(b, tail)
	b = append(b, ' ')
	if e.Proto != "" {
		b = appendQuoted(b, e.Proto)
	} else {
		b = append(b, "HTTP/1.1"...)
	}
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	if e.BytesOut > 0 {
		b = strconv.AppendInt(b, e.BytesOut, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ` "`...)
	if e.Referer == "" {
		b = append(b, '-')
	} else {
		head, tail := scrubURL(e.Referer, stripQuery)
		b = appendQuoted(b, head)
		b = appendQuoted(b, tail)
	}
	b = append(b, `" "`...)
	if e.UserAgent == "" {
		b = append(b, '-')
	} else {
		b = appendQuoted(b, e.UserAgent)
	}
	return append(b, "\"\n"...)
}

// appendCombinedHead appends the fields before the request line, its opening quote
// included: `%h %l %u [%t] "`.
func appendCombinedHead(b []byte, e *Entry) []byte {
	if e.Client.IsValid() {
		b = e.Client.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, " - "...)
	b = appendBare(b, e.User)
	b = append(b, " ["...)
	b = e.Time.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	return append(b, `] "`...)
}

func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendBare(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c <= 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendSquid writes Squid's native format (logformat squid), field for field:
//
//	%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt
//
// time the transaction ended (seconds.milliseconds), elapsed milliseconds, client
// address, Squid result code/HTTP status, bytes sent to the client (body bytes: the
// doors do not count headers), method, URL, user, hierarchy code/peer, content type.
// Fields never contain spaces: unsafe bytes are %-encoded, empty ones print "-".
func appendSquid(b []byte, e *Entry, stripQuery bool) []byte {
	b = appendSquidHead(b, e)
	b = append(b, squidResult(e)...)
	b = append(b, '/')
	st := e.Status
	if st < 0 || st > 999 {
		st = 0
	}
	b = append(b, byte('0'+st/100), byte('0'+st/10%10), byte('0'+st%10), ' ')
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, ' ')
	b = appendSquidField(b, e.Method, "")
	b = append(b, ' ')
	head, tail := scrubURL(e.URL, stripQuery)
	b = appendSquidField(b, head, tail)
	b = append(b, ' ')
	b = appendSquidField(b, e.User, "")
	b = append(b, ' ')
	hier, peer := squidHierarchy(e)
	b = append(b, hier...)
	b = append(b, '/')
	b = appendSquidField(b, peer, "")
	b = append(b, ' ')
	b = appendSquidField(b, e.ContentType, "")
	return append(b, '\n')
}

// appendSquidHead appends the first three squid fields and a space: the time the
// transaction ended, elapsed milliseconds (right-aligned in six columns), client.
func appendSquidHead(b []byte, e *Entry) []byte {
	end := e.Time.Add(e.Duration)
	b = appendPadded(b, end.Unix(), 9)
	b = append(b, '.')
	ms := end.Nanosecond() / int(time.Millisecond)
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), ' ')
	b = appendPadded(b, e.Duration.Milliseconds(), 6)
	b = append(b, ' ')
	if e.Client.IsValid() {
		b = e.Client.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	return append(b, ' ')
}

func appendPadded(b []byte, v int64, width int) []byte {
	var tmp [20]byte
	digits := strconv.AppendInt(tmp[:0], v, 10)
	for n := len(digits); n < width; n++ {
		b = append(b, ' ')
	}
	return append(b, digits...)
}

// appendSquidField appends a+b %-encoding spaces, control characters, non-ASCII bytes
// and '%' when it does not start a %XX escape; "-" when both are empty.
func appendSquidField(b []byte, a, c string) []byte {
	if a == "" && c == "" {
		return append(b, '-')
	}
	for _, s := range [2]string{a, c} {
		for i := 0; i < len(s); i++ {
			ch := s[i]
			if ch <= 0x20 || ch >= 0x7f || (ch == '%' && !isEscape(s[i:])) {
				b = append(b, '%', "0123456789ABCDEF"[ch>>4], "0123456789ABCDEF"[ch&0xf])
				continue
			}
			b = append(b, ch)
		}
	}
	return b
}

func isEscape(s string) bool {
	return len(s) >= 3 && isHex(s[1]) && isHex(s[2])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// squidResult maps an entry to Squid's result code (%Ss).
func squidResult(e *Entry) string {
	aborted := e.Error != "" && e.Status == 0
	switch {
	case e.Denied():
		return "TCP_DENIED"
	case e.Method == "CONNECT" && e.Action == "inspect":
		return "NONE_NONE" // Squid's code for a CONNECT it bumped
	case e.Method == "CONNECT":
		if aborted {
			return "TCP_TUNNEL_ABORTED"
		}
		return "TCP_TUNNEL"
	}
	code := "TCP_MISS"
	switch strings.ToLower(e.Cache) {
	case "hit":
		code = "TCP_HIT"
	case "stale":
		code = "TCP_REFRESH_FAIL_OLD"
	case "revalidated":
		code = "TCP_REFRESH_UNMODIFIED"
	case "modified", "refresh":
		code = "TCP_REFRESH_MODIFIED"
	}
	if aborted {
		return code + "_ABORTED"
	}
	return code
}

// denied reports whether the proxy refused the request itself: a block verdict, or a
// client refused before any rule ("refuse", forward's allow_clients).
// Denied reports whether the request was refused (blocked by a rule, or refused
// before one decided).
func (e *Entry) Denied() bool { return e.Action == "block" || e.Action == "refuse" }

// squidHierarchy maps an entry to Squid's hierarchy code and peer (%Sh/%<a).
func squidHierarchy(e *Entry) (code, peer string) {
	switch c := strings.ToLower(e.Cache); {
	case e.Denied(), c == "hit", c == "stale", e.Upstream == "":
		return "HIER_NONE", "-"
	case e.Upstream == "direct":
		return "HIER_DIRECT", hostOf(e.URL)
	}
	return "ANY_OLD_PARENT", hostOf(e.Upstream)
}

// scrubURL returns u as head+tail with any userinfo ("user:pass@") removed and, when
// stripQuery is set, the query and fragment dropped. It does not allocate.
func scrubURL(u string, stripQuery bool) (head, tail string) {
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	end := len(u)
	if i := strings.IndexAny(u[start:], "/?#"); i >= 0 {
		end = start + i
	}
	head, tail = u, ""
	if at := strings.LastIndexByte(u[start:end], '@'); at >= 0 {
		head, tail = u[:start], u[start+at+1:]
	}
	if stripQuery {
		if tail == "" {
			head, tail = cutQuery(head, start), ""
		} else {
			tail = cutQuery(tail, 0)
		}
	}
	return head, tail
}

func cutQuery(s string, from int) string {
	if i := strings.IndexAny(s[from:], "?#"); i >= 0 {
		return s[:from+i]
	}
	return s
}

// hostOf returns the host of an absolute URL, "host:port" or bare host, without
// scheme, userinfo, port or brackets.
func hostOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	if strings.HasPrefix(u, "[") {
		if i := strings.IndexByte(u, ']'); i > 0 {
			return u[1:i]
		}
	}
	if i := strings.LastIndexByte(u, ':'); i >= 0 && strings.IndexByte(u, ':') == i {
		u = u[:i]
	}
	return strings.TrimSuffix(u, ".")
}

// HostOf returns the host of a logged URL (an absolute URL, "host:port" for a CONNECT,
// or dns://NAME/… for a DNS query in the combined and squid formats) without scheme,
// userinfo, port or brackets: the host the status page and reports group by.
func HostOf(u string) string { return hostOf(u) }

// jsonTimeLayout is the JSON format's time, always in UTC.
const jsonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendJSONTime appends t in UTC as AppendFormat writes jsonTimeLayout
// ("2006-01-02T15:04:05.000Z"), digit by digit: the layout is not parsed
// again for every line. Years outside 0-9999 go through AppendFormat.
func appendJSONTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, jsonTimeLayout)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append2(b, year/100)
	b = append2(b, year%100)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.')
	b = append2(b, ms/10)
	b = append(b, byte('0'+ms%10), 'Z')
	return b
}

// append2 appends v (0 <= v < 100) in two decimal digits.
func append2(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}
