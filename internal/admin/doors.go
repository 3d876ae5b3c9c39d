package admin

import (
	"strings"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// The doors and protocols the status page counts separately: a small closed set,
// so the counters are a fixed array. A door or protocol outside it counts under
// otherName; an entry without a protocol under unknownName.
var (
	doorNames  = [...]string{"forward", "socks", "reverse", "dns", otherName}
	protoNames = [...]string{unknownName, "HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0", "SOCKS5", "udp", "tcp", otherName}
)

const (
	otherName   = "(other)"
	unknownName = "(unknown)"
	dnsServFail = 2 // DNS rcode SERVFAIL
	dnsRefused  = 5 // DNS rcode REFUSED
)

// doorCounts counts entries since start by door, protocol and whether the client
// came over TLS. Not safe for concurrent use: Status holds its lock.
type doorCounts [len(doorNames)][len(protoNames)][2]doorCounter

type doorCounter struct{ requests, blocked, refused, errors uint64 }

// DoorCount is one door, protocol and transport of /status.json's doors: what
// the door served since start. A CONNECT or SOCKS5 tunnel counts once, a DNS
// query once.
type DoorCount struct {
	Door  string `json:"door"`  // forward, socks, reverse, dns, or (other)
	Proto string `json:"proto"` // HTTP/1.1, HTTP/2.0, HTTP/3.0, SOCKS5, udp, tcp…; (unknown) when not recorded
	TLS   bool   `json:"tls"`   // the client reached the door over TLS
	// Requests counts every entry; Blocked those a rule or guard blocked;
	// Refused the others the door turned away (a 4xx answer: sign-in, limits,
	// bad requests; DNS: REFUSED); Errors those that failed (a 5xx answer;
	// DNS: SERVFAIL).
	Requests uint64 `json:"requests"`
	Blocked  uint64 `json:"blocked"`
	Refused  uint64 `json:"refused"`
	Errors   uint64 `json:"errors"`
}

// add counts e.
func (d *doorCounts) add(e *accesslog.Entry) {
	door := nameIndex(doorNames[:], e.Door)
	proto := 0
	if e.Proto != "" {
		proto = nameIndex(protoNames[:], e.Proto)
	}
	// The reverse door does not set Entry.TLS; its URL's scheme says it.
	tls := e.TLS || (e.Door == "reverse" && strings.HasPrefix(e.URL, "https://"))
	c := &d[door][proto][b2i(tls)]
	c.requests++
	refused, failed := e.Status >= 400 && e.Status < 500, e.Status >= 500
	if e.Door == "dns" {
		refused, failed = e.Status == dnsRefused, e.Status == dnsServFail
	}
	switch {
	case e.Action == "block":
		c.blocked++
	case refused:
		c.refused++
	case failed:
		c.errors++
	}
}

// report lists the counters that saw an entry, in the fixed order of doorNames,
// plain before TLS, then protoNames.
func (d *doorCounts) report() []DoorCount {
	out := []DoorCount{}
	for i := range d {
		for tls := range 2 {
			for j := range d[i] {
				c := &d[i][j][tls]
				if c.requests == 0 {
					continue
				}
				out = append(out, DoorCount{Door: doorNames[i], Proto: protoNames[j], TLS: tls == 1,
					Requests: c.requests, Blocked: c.blocked, Refused: c.refused, Errors: c.errors})
			}
		}
	}
	return out
}

// nameIndex is name's position in names, or the last one's (otherName).
func nameIndex(names []string, name string) int {
	for i, n := range names[:len(names)-1] {
		if n == name {
			return i
		}
	}
	return len(names) - 1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
