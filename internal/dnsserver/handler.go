package dnsserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/rules"
)

// ednsSize is the UDP payload size the server advertises and honours at most.
const ednsSize = 1232

// outcome is what the log line says about a query.
type outcome struct {
	action   rules.Action
	rule     string
	category string
	upstream string // "resolver", "gslb", "safesearch", "block"
	errText  string
	cache    string // "hit" when answered from the resolver cache's wire form
	ede      *dns.EDNS0_EDE
	scope    int  // ECS scope for the echo; -1 = the source prefix
	dropped  bool // no answer is sent: the in-flight bound is reached
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) { s.serve(w, r, false) }

// serve answers one query. admitted says the caller already holds the query's
// in-flight slot (see inflight), which serve gives back once the answer is known
// and before it is sent (a client that has its answer may ask again at once);
// otherwise serve takes one if the query must wait for an upstream, and drops
// the query when none is free.
func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg, admitted bool) {
	st := s.state.Load()
	q := query{msg: r, client: remoteAddr(w.RemoteAddr()), start: st.now()}
	reqOpt := r.IsEdns0()
	q.size, q.proto = dns.MaxMsgSize, "tcp"
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		q.size, q.proto = dns.MinMsgSize, "udp"
		if reqOpt != nil {
			q.size = int(min(max(reqOpt.UDPSize(), dns.MinMsgSize), ednsSize))
		}
	}
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.bufs.Put(bp)
	lim := &s.busy
	if admitted {
		lim = nil
	}
	a := st.handle(&q, (*bp)[:0], lim)
	if admitted {
		s.busy.release(q.client)
	}
	if a.out.dropped {
		st.logQuery(&q, a.out, dns.RcodeServerFailure, 0)
		return
	}
	m, wire := a.m, a.wire
	rcode := 0
	var err error
	if wire != nil {
		rcode = int(wire[3] & 0x0F)
	} else {
		if reqOpt != nil {
			st.addOpt(m, reqOpt, a.out)
		}
		if q.size < dns.MaxMsgSize {
			m.Truncate(q.size)
		}
		rcode = m.Rcode
		// Packed here rather than by WriteMsg (which would do the same, TSIG aside:
		// the server signs nothing) to reuse the buffer and log the reply's size.
		wire, err = m.PackBuffer((*bp)[:cap(*bp)])
	}
	if err == nil {
		_, err = w.Write(wire)
		*bp = wire[:0]
	}
	sent := len(wire)
	if err != nil {
		a.out.errText, sent = err.Error(), 0
	}
	st.logQuery(&q, a.out, rcode, sent)
}

// logQuery writes the access-log entry for q, answered with rcode in a reply of
// size bytes.
func (st *state) logQuery(q *query, out outcome, rcode int, size int) {
	if st.log == nil {
		return
	}
	var method string
	if q.qtype != 0 { // 0: no question
		method = dns.Type(q.qtype).String() // TYPEn for a type without a name
	}
	st.log.Log(&accesslog.Entry{
		Time:     q.start,
		Door:     rules.DoorDNS.String(),
		Client:   q.client,
		Method:   method,
		URL:      q.host,
		Action:   out.action.String(),
		Rule:     out.rule,
		Category: out.category,
		Status:   rcode,
		BytesOut: int64(size),
		Duration: st.now().Sub(q.start),
		Upstream: out.upstream,
		Cache:    out.cache,
		Error:    out.errText,
		Proto:    q.proto,
	})
}

func remoteAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// query is one question on its way through the door's checks (handle): either
// unpacked (msg), or a plain query the UDP read loop parsed itself (msg nil: one
// question of class IN, QUERY opcode, at most an OPT record of version 0 without
// options; see parseQuery).
type query struct {
	msg    *dns.Msg   // nil: parsed in the read loop, not unpacked
	wire   wireQuery  // what an answer from the cache in wire form needs
	plain  bool       // class IN and no EDNS option: the cache may answer in wire form
	qname  string     // canonical (lower case), fully qualified; "" before handle's first step
	host   string     // qname without its final dot (the name rules see)
	qtype  uint16     // 0: no question
	qclass uint16     // the question's class
	client netip.Addr // the sender
	start  time.Time
	size   int    // the largest reply the client accepts
	proto  string // "udp" or "tcp", for the log
}

// answer is what handle decided for a query.
type answer struct {
	m    *dns.Msg // the reply, without its OPT record (the caller adds it), or nil
	wire []byte   // or the finished reply, from the resolver's cache in wire form
	out  outcome
	// fate is, for a query the read loop parsed (no msg), what became of it:
	// fastNone when a step needs the unpacked message (the query is then served
	// again, unpacked, in a goroutine); fastAdmitted when it must be forwarded
	// and holds its in-flight slot; fastDropped when no slot was free.
	fate fastFate
}

// handle runs the DNS door's checks on q, in their one order: opcode and
// EDNS, allow_clients (except for the GSLB zone), the policy's verdict, the
// block answer, the GSLB zone, SafeSearch, the resolver's cache in wire form,
// and forwarding through the resolver. It serves both the UDP read loop (q
// without msg: it answers from the cache in wire form, or takes the query's
// in-flight slot, and stops at any step that needs the unpacked message) and
// the goroutine that serves an unpacked query. A query that must wait for an
// upstream takes a slot of lim first (nil: the caller holds one); with none
// free, out.dropped is set and nothing is answered. buf receives a wire-form
// answer.
func (st *state) handle(q *query, buf []byte, lim *inflight) (a answer) {
	a.out.action = rules.ActionAllow
	r := q.msg
	inLoop := r == nil // in the UDP read loop: a step that needs the unpacked message hands the query on
	loc := q.client
	if r != nil {
		rcode, ok := st.checkQuery(q, &loc)
		if !ok {
			a.m = reply(r, rcode)
			return a
		}
	}
	inZone := st.gslb != nil && st.gslb.inZone(q.qname)
	if !inZone && !st.mayRecurse(q.client) {
		if inLoop {
			return a
		}
		a.out.action, a.out.rule = rules.ActionBlock, "allow_clients"
		a.m = reply(r, dns.RcodeRefused)
		return a
	}
	v, allowed := st.evaluate(q.client, q.host, q.qtype, q.start)
	a.out.rule, a.out.category = v.Rule, v.Category
	if !allowed {
		if inLoop {
			return a
		}
		a.m = reply(r, dns.RcodeSuccess)
		st.block(a.m, r.Question[0], v, &a.out)
		return a
	}
	if inZone {
		if inLoop {
			return a
		}
		a.out.upstream = "gslb"
		a.m = reply(r, dns.RcodeSuccess)
		a.out.scope = st.gslb.answer(a.m, q.qname, q.qtype, loc, st.health)
		return a
	}
	if target, ok := filter.SafeSearchTarget(q.host, st.safeSearch(q.client)); ok && q.qclass == dns.ClassINET {
		if inLoop {
			return a
		}
		a.out.upstream = "safesearch"
		a.m = reply(r, dns.RcodeSuccess)
		st.safeSearchAnswer(a.m, r, r.Question[0], target)
		return a
	}
	if q.plain {
		if a.wire = st.cached(buf, q.wire, q.client, q.start, q.size); a.wire != nil {
			a.out.upstream, a.out.cache = "resolver", "hit"
			a.fate = fastAnswered
			return a
		}
	}
	if inLoop {
		// Forwarded from a goroutine: the slot is taken here, in the read loop,
		// so that a flood of misses is dropped before it costs one.
		if st.res == nil {
			return a
		}
		a.out.upstream = "resolver"
		if a.fate = fastAdmitted; !st.admit(lim, q.client, &a.out) {
			a.fate = fastDropped
		}
		return a
	}
	a.m = st.forward(r, q.client, q.start, &a.out, lim)
	return a
}

// checkQuery checks an unpacked query's opcode, question count and EDNS, fills
// q's question fields, and sets loc to the ECS option's address; ok false means
// the query is answered with rcode.
func (st *state) checkQuery(q *query, loc *netip.Addr) (rcode int, ok bool) {
	r := q.msg
	if r.Opcode != dns.OpcodeQuery {
		return dns.RcodeNotImplemented, false
	}
	if len(r.Question) != 1 {
		return dns.RcodeFormatError, false
	}
	qq := r.Question[0]
	q.qtype, q.qclass = qq.Qtype, qq.Qclass
	q.qname = dns.CanonicalName(qq.Name)
	q.host = strings.TrimSuffix(q.qname, ".")
	opt := r.IsEdns0()
	if opt != nil {
		if opt.Version() != 0 {
			return dns.RcodeBadVers, false
		}
		if ecs := findECS(opt); ecs != nil {
			a, ok := ecsAddr(ecs)
			if !ok {
				return dns.RcodeFormatError, false
			}
			if ecs.SourceNetmask > 0 {
				*loc = a
			}
		}
	}
	if q.plain = qq.Qclass == dns.ClassINET && (opt == nil || len(opt.Option) == 0); q.plain {
		q.wire = wireQuery{id: r.Id, name: qq.Name, qtype: qq.Qtype, opcode: r.Opcode, rd: r.RecursionDesired, cd: r.CheckingDisabled}
		if opt != nil {
			q.wire.edns, q.wire.do = true, opt.Do()
		}
	}
	return 0, true
}

// reply returns a new reply to r with the given rcode.
func reply(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	m.Rcode = rcode
	return m
}

// wireCache is the resolver's cache in wire form (*resolver.Resolver).
type wireCache interface {
	AppendCached(dst []byte, id uint16, name string, qtype uint16, do, cd bool) ([]byte, []string, bool)
}

// wireQuery is what answering from the cache in wire form needs of a query.
type wireQuery struct {
	id       uint16
	name     string // as asked (case preserved), fully qualified
	qtype    uint16
	opcode   int
	rd, cd   bool
	edns, do bool // an OPT record without options was present; its DO bit
}

// cached returns the finished reply to q from the resolver's cache in wire form,
// appended to buf, or nil when the slow path must answer: a miss, an answer
// larger than size, or a CNAME target the policy blocks.
func (st *state) cached(buf []byte, q wireQuery, client netip.Addr, start time.Time, size int) []byte {
	wc, ok := st.res.(wireCache)
	if !ok {
		return nil
	}
	b, cnames, ok := wc.AppendCached(buf, q.id, q.name, q.qtype, q.do, q.cd)
	if !ok {
		return nil
	}
	for _, c := range cnames {
		if _, ok := st.evaluate(client, c, q.qtype, start); !ok {
			return nil
		}
	}
	// Flags: QR, the query's opcode and RD; not AA, not TC. RA; the upstream's AD
	// and rcode; the query's CD.
	b[2] = 0x80 | byte(q.opcode&0xF)<<3
	if q.rd {
		b[2] |= 0x01
	}
	b[3] = 0x80 | b[3]&0x2F
	if q.cd {
		b[3] |= 0x10
	}
	if q.edns {
		var flags byte
		if q.do {
			flags = 0x80
		}
		// OPT: root name, type 41, class = payload size, TTL = ext-rcode 0,
		// version 0, flags; no options.
		b = append(b, 0, 0, 41, ednsSize>>8, ednsSize&0xFF, 0, 0, flags, 0, 0, 0)
		b[11]++
		if b[11] == 0 {
			b[10]++
		}
	}
	if len(b) > size {
		return nil
	}
	return b
}

// evaluate asks the policy about host; ok is false when it is blocked.
func (st *state) evaluate(client netip.Addr, host string, qtype uint16, start time.Time) (rules.Verdict, bool) {
	if st.policy == nil {
		return rules.Verdict{Action: rules.ActionAllow}, true
	}
	v := st.policy.Evaluate(&rules.Facts{Door: rules.DoorDNS, Client: client, Host: host, QType: qtype, Time: start})
	return v, !v.Blocked()
}

// block turns m into the configured block answer for q.
func (st *state) block(m *dns.Msg, q dns.Question, v rules.Verdict, out *outcome) {
	out.action, out.rule, out.category, out.upstream = rules.ActionBlock, v.Rule, v.Category, "block"
	m.Answer, m.Ns, m.Extra = nil, nil, nil
	m.Rcode = dns.RcodeSuccess
	text := v.Rule
	if v.Category != "" {
		text += ": " + v.Category
	}
	out.ede = &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: text}
	if st.cfg.BlockAnswer == BlockNXDomain {
		m.Rcode = dns.RcodeNameError
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: st.ttl}
	switch q.Qtype {
	case dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: st.blockA})
	case dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: st.blockAAA})
	}
}

// safeSearchAnswer answers q with a CNAME to target, followed by target's records
// of the queried type when the resolver has them.
func (st *state) safeSearchAnswer(m *dns.Msg, r *dns.Msg, q dns.Question, target string) {
	fqdn := target + "."
	m.Answer = append(m.Answer, &dns.CNAME{
		Hdr:    dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: st.ttl},
		Target: fqdn,
	})
	if q.Qtype == dns.TypeCNAME || st.res == nil {
		return
	}
	sub := new(dns.Msg)
	sub.SetQuestion(fqdn, q.Qtype)
	sub.CheckingDisabled = r.CheckingDisabled
	resp, err := st.res.Exchange(context.Background(), sub)
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		return // the CNAME alone: the client resolves the target itself
	}
	m.Answer = append(m.Answer, resp.Answer...)
}

// cachedExchanger answers from the resolver's cache alone (*resolver.Resolver).
type cachedExchanger interface {
	ExchangeCached(q *dns.Msg) (*dns.Msg, bool)
}

// forward answers r through the resolver and blocks an answer whose CNAME chain
// reaches a blocked name (CNAME cloaking). A cached answer is used at once; a
// query that must wait for an upstream takes a slot of lim (nil: the caller
// holds one) or, when none is free, is dropped (out.dropped, nil returned).
func (st *state) forward(r *dns.Msg, client netip.Addr, start time.Time, out *outcome, lim *inflight) *dns.Msg {
	out.upstream = "resolver"
	if st.res == nil {
		return reply(r, dns.RcodeRefused)
	}
	q := &dns.Msg{MsgHdr: dns.MsgHdr{Id: r.Id, RecursionDesired: true, CheckingDisabled: r.CheckingDisabled}, Question: r.Question}
	if opt := r.IsEdns0(); opt != nil && opt.Do() {
		q.SetEdns0(ednsSize, true)
	}
	var resp *dns.Msg
	if ce, ok := st.res.(cachedExchanger); ok {
		if resp, ok = ce.ExchangeCached(q); ok {
			out.cache = "hit"
		}
	}
	if resp == nil {
		if lim != nil {
			if !st.admit(lim, client, out) {
				return nil
			}
			defer lim.release(client)
		}
		// The resolver bounds its own upstream attempts; a query in flight is not
		// cancelled by a client, which never waits for it anyway.
		var err error
		resp, err = st.res.Exchange(context.Background(), q)
		if err != nil {
			out.errText = err.Error()
			return reply(r, dns.RcodeServerFailure)
		}
	}
	for _, rr := range resp.Answer {
		c, ok := rr.(*dns.CNAME)
		if !ok {
			continue
		}
		target := strings.TrimSuffix(dns.CanonicalName(c.Target), ".")
		if v, ok := st.evaluate(client, target, r.Question[0].Qtype, start); !ok {
			m := reply(r, dns.RcodeSuccess)
			st.block(m, r.Question[0], v, out)
			return m
		}
	}
	resp.Id = r.Id
	resp.Response = true
	resp.Opcode = r.Opcode
	resp.RecursionDesired = r.RecursionDesired
	resp.RecursionAvailable = true
	resp.Authoritative = false
	resp.Question = r.Question
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	return resp
}

// admit takes an in-flight slot of lim for client; when none is free it marks
// out as dropped and returns false.
func (st *state) admit(lim *inflight, client netip.Addr, out *outcome) bool {
	if lim.acquire(client, st.cfg.MaxInFlight, st.cfg.MaxInFlightPerClient) {
		return true
	}
	out.dropped = true
	out.errText = fmt.Sprintf("dropped, no answer sent: dns.max_inflight (%d) or dns.max_inflight_per_client (%d) queries are waiting for an upstream", st.cfg.MaxInFlight, st.cfg.MaxInFlightPerClient)
	return false
}

// addOpt adds the reply's OPT record: our payload size, the DO bit echoed, the ECS
// option echoed with its scope (RFC 7871 §7.2.1), and an Extended DNS Error for
// blocks.
func (st *state) addOpt(m *dns.Msg, reqOpt *dns.OPT, out outcome) {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(ednsSize)
	if reqOpt.Do() {
		o.SetDo()
	}
	if ecs := findECS(reqOpt); ecs != nil && m.Rcode != dns.RcodeFormatError {
		scope := out.scope
		switch {
		case ecs.SourceNetmask == 0:
			scope = 0 // RFC 7871 §7.2.1
		case scope < 0:
			scope = int(ecs.SourceNetmask)
		}
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{
			Code: dns.EDNS0SUBNET, Family: ecs.Family, SourceNetmask: ecs.SourceNetmask,
			SourceScope: uint8(scope), Address: ecs.Address,
		})
	}
	if out.ede != nil {
		o.Option = append(o.Option, out.ede)
	}
	m.Extra = append(m.Extra, o)
}

func findECS(o *dns.OPT) *dns.EDNS0_SUBNET {
	for _, e := range o.Option {
		if s, ok := e.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	return nil
}

// ecsAddr returns the ECS option's address masked to its source prefix; ok is
// false for an invalid option (RFC 7871 §7.1.1: FORMERR).
func ecsAddr(e *dns.EDNS0_SUBNET) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(e.Address)
	if !ok || e.SourceScope != 0 {
		return netip.Addr{}, false
	}
	switch e.Family {
	case 1:
		a = a.Unmap()
		if !a.Is4() || e.SourceNetmask > 32 {
			return netip.Addr{}, false
		}
	case 2:
		if !a.Is6() || a.Is4In6() || e.SourceNetmask > 128 {
			return netip.Addr{}, false
		}
	default:
		return netip.Addr{}, false
	}
	p, err := a.Prefix(int(e.SourceNetmask))
	if err != nil {
		return netip.Addr{}, false
	}
	return p.Addr(), true
}
