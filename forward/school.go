package forward

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/filter/filetype"
	"github.com/portcullis/portcullis/filter/phrase"
	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/forward/pac"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/rules"
)

// PhraseOff as a phrase_thresholds value turns phrase filtering off for a group.
const PhraseOff = -1

// School is the part of the forward section a school deployment adds: who is
// browsing (auth), how browsers find the proxy (pac), SafeSearch enforced without
// inspection, and the checks made on responses (file types and sizes, phrases).
// It is inlined in Config, so its fields sit directly under `forward:`.
type School struct {
	// Auth is proxy sign-in (Proxy-Authorization: Basic against an htpasswd file
	// with bcrypt entries, groups from a group file). Zero: no sign-in. File paths
	// are relative to the policy file.
	Auth auth.Config `yaml:"auth"`
	// PAC serves /proxy.pac and /wpad.dat on the proxy port (relative-URL requests
	// from allowed clients) and, through AdminPACHandler, on the admin listener.
	// Absent: no PAC file (404). An empty section `pac: {}` sends everything
	// through the proxy.
	PAC *pac.Config `yaml:"pac"`
	// SafeSearch is enforced for clients in no group named in SafeSearchGroups: a
	// CONNECT to a search host is dialed to the engine's enforcement address
	// (filter.SafeSearchTarget), a plain or inspected request is sent there with
	// its own Host, and YouTube requests get the YouTube-Restrict header. Default:
	// nothing enforced.
	SafeSearch filter.SafeSearch `yaml:"safesearch"`
	// SafeSearchGroups replaces SafeSearch for members of these groups (policy
	// groups by address or user, and groups from the group file); a member of
	// several gets the strictest of them.
	SafeSearchGroups map[string]filter.SafeSearch `yaml:"safesearch_groups"`
	// FileTypes blocks downloads by media type, extension and size, decided on the
	// response headers (the block page names the reason); a body without a length
	// is cut off at max_bytes. Zero: nothing blocked.
	FileTypes filetype.Config `yaml:"file_types"`
	// Phrase scores text responses against weighted phrase lists (paths relative
	// to the policy file) and replaces a page over the threshold by the block page
	// naming the top phrases. No lists: off. While it is on for a request, the
	// proxy asks the origin for an uncompressed response (Accept-Encoding:
	// identity); a gzip or deflate response sent anyway is decoded to be scored
	// and relayed decoded (at most phrase.DefaultMaxDecoded bytes: past that the
	// stream is cut), and one in any other encoding (br, zstd…) is blocked.
	Phrase phrase.Config `yaml:"phrase"`
	// PhraseThresholds overrides phrase.threshold per group (-1: no phrase
	// filtering for the group); a member of several groups gets the lowest.
	PhraseThresholds map[string]int `yaml:"phrase_thresholds"`
}

// Validate reports problems with s; paths are relative to the forward section.
func (s *School) Validate() []field.Error {
	var errs []field.Error
	errs = append(errs, field.Prefix("auth", s.Auth.Validate())...)
	if s.PAC != nil {
		errs = append(errs, field.Prefix("pac", s.PAC.Validate())...)
	}
	errs = append(errs, field.Prefix("safesearch", s.SafeSearch.Validate())...)
	for _, g := range slices.Sorted(maps.Keys(s.SafeSearchGroups)) {
		ss := s.SafeSearchGroups[g]
		errs = append(errs, field.Prefix("safesearch_groups."+g, ss.Validate())...)
	}
	errs = append(errs, field.Prefix("file_types", s.FileTypes.Validate())...)
	errs = append(errs, field.Prefix("phrase", s.Phrase.Validate())...)
	for _, g := range slices.Sorted(maps.Keys(s.PhraseThresholds)) {
		if v := s.PhraseThresholds[g]; v < PhraseOff {
			errs = append(errs, field.Errorf("phrase_thresholds."+g, "must be -1 (off) or more, not %d", v))
		}
	}
	return errs
}

// school is the compiled School of one Proxy.
type school struct {
	cfg     *School
	types   *filetype.Checker // nil: no file-type checks
	phrases *phrase.Matcher   // nil: no phrase filtering
	popts   phrase.Options
	groups  func(*rules.Facts) []string
	pac     http.Handler // nil: no PAC file
}

// newSchool compiles the school part of cfg with the matcher and group function
// the engine loaded.
func newSchool(cfg *Config, opts Options) (*school, error) {
	s := &school{cfg: &cfg.School, groups: opts.Groups, popts: cfg.Phrase.Options()}
	if s.groups == nil {
		s.groups = func(f *rules.Facts) []string { return f.Groups }
	}
	ft := cfg.FileTypes
	if len(ft.BlockMIME) > 0 || len(ft.BlockExtensions) > 0 || ft.MaxBytes > 0 {
		c, err := filetype.New(ft)
		if err != nil {
			return nil, err
		}
		s.types = c
	}
	if opts.Phrases != nil && opts.Phrases.Len() > 0 {
		s.phrases = opts.Phrases
	}
	if cfg.PAC != nil {
		h, err := localPAC(*cfg.PAC)
		if err != nil {
			return nil, err
		}
		s.pac = h
	}
	return s, nil
}

// localHandler serves relative-URL requests (allowed clients only, no sign-in):
// the PAC file when configured, the inspection CA and its install page when
// there is a CA (CAHandler), the Options.Local handler or the "this is a proxy"
// page otherwise.
func (p *Proxy) localHandler(next http.Handler) http.Handler {
	if next == nil {
		next = http.HandlerFunc(p.notProxyRequest)
	}
	var ca http.Handler
	if p.ca != nil {
		ca = CAHandler(p.ca)
	}
	if p.school.pac == nil && ca == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case p.school.pac != nil && (r.URL.Path == "/proxy.pac" || r.URL.Path == "/wpad.dat"):
			p.school.pac.ServeHTTP(w, r)
		case ca != nil && caPaths(r.URL.Path):
			ca.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// localPAC serves the PAC of cfg on the proxy port: the proxy it names is
// cfg.Proxy, or else the address and port the browser reached this listener on
// (pac.DerivedHandler, one per listening port).
func localPAC(cfg pac.Config) (http.Handler, error) {
	if cfg.Proxy != "" {
		return pac.DerivedHandler(cfg, 0)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("pac: %v", errs[0])
	}
	var mu sync.Mutex
	byPort := map[uint16]http.Handler{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		ap, err := netip.ParseAddrPort(fmt.Sprint(local))
		if local == nil || err != nil {
			http.Error(w, "no local address", http.StatusInternalServerError)
			return
		}
		mu.Lock()
		h := byPort[ap.Port()]
		if h == nil {
			h, _ = pac.DerivedHandler(cfg, ap.Port()) // cfg validated, port not 0
			byPort[ap.Port()] = h
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	}), nil
}

// AdminPACHandler returns the handler serving the PAC file of a forward section
// on the admin listener (patterns "GET /proxy.pac" and "GET /wpad.dat"), answering
// only the section's allow_clients; nil when the section has no pac. The proxy it
// names is pac.proxy, or the admin listener's local address with the port of the
// first forward listen address.
func AdminPACHandler(c *Config) (http.Handler, error) {
	if c == nil || c.PAC == nil {
		return nil, nil
	}
	d := c.WithDefaults()
	_, portStr, err := net.SplitHostPort(d.Listen[0])
	if err != nil {
		return nil, err
	}
	port, _ := strconv.ParseUint(portStr, 10, 16)
	var h http.Handler
	if c.PAC.Proxy == "" && port == 0 {
		return nil, fmt.Errorf("pac: set pac.proxy when the forward port is chosen at start (0)")
	}
	if h, err = pac.DerivedHandler(*c.PAC, uint16(port)); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientAddr(r.RemoteAddr)
		if !slices.ContainsFunc(d.AllowClients, func(pf netip.Prefix) bool { return pf.Contains(client) }) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// groupsOf returns every group of the exchange's client and user.
func (p *Proxy) groupsOf(x *exchange) []string {
	return p.school.groups(&rules.Facts{Door: rules.DoorForward, Client: x.entry.Client, User: x.entry.User, Groups: x.groups})
}

// safeSearch returns what SafeSearch enforces for the exchange: the strictest
// setting of its groups named in safesearch_groups, else the top-level setting.
func (p *Proxy) safeSearch(x *exchange) filter.SafeSearch {
	s := p.school.cfg
	if len(s.SafeSearchGroups) == 0 {
		return s.SafeSearch
	}
	var out filter.SafeSearch
	found := false
	for _, g := range p.groupsOf(x) {
		if gs, ok := s.SafeSearchGroups[g]; ok {
			out, found = out.Merge(gs), true
		}
	}
	if !found {
		return s.SafeSearch
	}
	return out
}

// phraseThreshold returns the exchange's phrase threshold, or false when phrase
// filtering is off for it.
func (p *Proxy) phraseThreshold(x *exchange) (int, bool) {
	if p.school.phrases == nil {
		return 0, false
	}
	s := p.school.cfg
	if len(s.PhraseThresholds) == 0 {
		return p.school.popts.Threshold, true
	}
	best, found := 0, false
	for _, g := range p.groupsOf(x) {
		t, ok := s.PhraseThresholds[g]
		if !ok {
			continue
		}
		if !found || (t != PhraseOff && (best == PhraseOff || t < best)) {
			best = t
		}
		found = true
	}
	if !found {
		return p.school.popts.Threshold, true
	}
	return best, best != PhraseOff
}

// connectHost is the host a CONNECT to host is dialed to: the SafeSearch target
// when one applies to the exchange, else host itself. The certificate the search
// engine presents there is valid for host.
func (p *Proxy) connectHost(x *exchange, host string) string {
	if ss := p.safeSearch(x); ss.Enabled() {
		if target, ok := filter.SafeSearchTarget(host, ss); ok {
			x.entry.Upstream = "safesearch:" + target
			return target
		}
	}
	return host
}

// schoolRequest runs on every relayed request (plain or inspected) once it is
// prepared for upstream: it sends search requests to the SafeSearch address
// (keeping their Host), adds YouTube-Restrict, and asks for an uncompressed
// response when the page is to be phrase-scored.
func (p *Proxy) schoolRequest(x *exchange, r *http.Request) {
	if x.verdict.Blocked() {
		return
	}
	if ss := p.safeSearch(x); ss.Enabled() {
		host, port := rules.SplitHostPort(r.URL.Host)
		if target, ok := filter.SafeSearchTarget(host, ss); ok {
			if ss.YouTube == filter.YouTubeStrict || ss.YouTube == filter.YouTubeModerate {
				if target == filter.YouTubeStrictTarget || target == filter.YouTubeModerateTarget {
					r.Header.Set("YouTube-Restrict", youTubeHeader(ss.YouTube))
				}
			}
			r.Host = r.URL.Host
			if port != 0 {
				target = net.JoinHostPort(target, strconv.Itoa(int(port)))
			}
			r.URL.Host = target
			x.entry.Upstream = "safesearch:" + target
		}
	}
	if _, on := p.phraseThreshold(x); on && r.Method != http.MethodHead {
		r.Header.Set("Accept-Encoding", "identity")
	}
}

func youTubeHeader(level string) string {
	if level == filter.YouTubeStrict {
		return "Strict"
	}
	return "Moderate"
}

// schoolResponse checks the response to r before it is relayed (and before
// the profile's response edits): it blocks downloads by their headers, limits
// bodies without a length, and replaces pages over the phrase threshold with
// the block page, which it returns instead of resp. A passed page is relayed
// byte for byte.
func (p *Proxy) schoolResponse(x *exchange, r *http.Request, resp *http.Response) *http.Response {
	if x.verdict.Blocked() {
		return resp
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || resp.StatusCode == http.StatusNoContent || resp.Body == nil || resp.Body == http.NoBody {
		return resp
	}
	if p.school.types != nil {
		if blocked, reason := p.school.types.Check(r, resp); blocked {
			return p.schoolBlock(x, r, resp, "file_types", "download", upperFirst(reason)+".")
		}
		resp.Body = p.school.types.LimitBody(resp.Body)
	}
	threshold, on := p.phraseThreshold(x)
	if !on || r.Method == http.MethodHead || !phrase.TextType(resp.Header) {
		return resp
	}
	// The request asked for identity, but an origin may compress anyway: the
	// page is decoded to be scored (and relayed decoded), and one in an
	// encoding the filter cannot read is blocked, never relayed unscanned.
	if enc := phrase.Encoding(resp.Header); enc != "" {
		body, err := phrase.Decode(enc, resp.Body, phrase.DefaultMaxDecoded)
		if err != nil {
			x.entry.Error = err.Error()
			return p.schoolBlock(x, r, resp, "phrase", "phrases",
				fmt.Sprintf("The page came compressed (%s), which the content filter cannot read.", enc))
		}
		resp.Body = body
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	opts := p.school.popts
	opts.Threshold = threshold
	d, body, err := phrase.Filter(resp.Body, p.school.phrases, opts)
	var tooLarge *filetype.TooLargeError
	if errors.As(err, &tooLarge) {
		return p.schoolBlock(x, r, resp, "file_types", "download",
			fmt.Sprintf("The page is larger than the limit of %d bytes.", tooLarge.Max))
	}
	if err != nil {
		x.entry.Error = "reading the page: " + err.Error()
		return p.pageResponse(r, http.StatusBadGateway, upstreamMessage(http.StatusBadGateway))
	}
	if !d.Blocked {
		resp.Body = body
		return resp
	}
	resp.Body = http.NoBody // Filter closed the body
	return p.schoolBlock(x, r, resp, "phrase", "phrases", phraseReason(d, threshold))
}

// schoolBlock records a response-check block and returns the block page that
// replaces resp (whose body is closed).
func (p *Proxy) schoolBlock(x *exchange, r *http.Request, resp *http.Response, rule, category, reason string) *http.Response {
	_ = resp.Body.Close()
	x.verdict = rules.Verdict{Action: rules.ActionBlock, Rule: rule, Category: category, Reason: reason}
	x.entry.Action, x.entry.Rule, x.entry.Category = rules.ActionBlock.String(), rule, category
	host, _ := rules.SplitHostPort(r.URL.Host)
	if r.Host != "" { // a SafeSearch rewrite keeps the name the user asked for in Host
		host, _ = rules.SplitHostPort(r.Host)
	}
	url := x.entry.URL
	if x.inner {
		url = requestURL(r)
	}
	return p.blockResponse(r, &filter.BlockInfo{
		URL: url, Host: host, Rule: rule, Category: category,
		Reason: reason, Contact: p.cfg.Contact, User: x.entry.User, Time: x.entry.Time,
	})
}

// phraseReason names the score and the top phrases of a blocked page.
func phraseReason(d phrase.Decision, threshold int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "The page scored %d (the limit is %d). Top phrases: ", d.Score, threshold)
	for i, h := range d.Hits {
		if i > 0 {
			sb.WriteString(", ")
		}
		name := strings.TrimSpace(h.Phrase)
		if h.Banned {
			fmt.Fprintf(&sb, "%q (banned)", name)
		} else {
			fmt.Fprintf(&sb, "%q (%d)", name, h.Weight)
		}
	}
	sb.WriteString(".")
	return sb.String()
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
