package anonymize

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/glob"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/text/language"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/relay"
)

// ProfileConfig is one profile's section of the policy file (profiles: {name: …}).
// Every field's zero value means its documented default; Validate checks the values
// and Compile turns them into a Profile.
type ProfileConfig struct {
	// Level is transparent, anonymous or elite (default elite). See Level.
	Level string `yaml:"level"`
	// Referrer is keep (default), strip, same-origin (sent only to the page's own
	// origin, removed otherwise) or origin (reduced to "scheme://host[:port]/").
	Referrer string `yaml:"referrer"`
	// UserAgent is keep (default; an absent one stays absent), replace (always
	// UserAgentString) or generic (the browser family, platform and major version
	// kept, everything else frozen the way Chrome's UA reduction does; an unknown
	// browser gets UserAgentString; a tool or bot, not "Mozilla/…", keeps its own).
	UserAgent string `yaml:"user_agent"`
	// UserAgentString is the agent for replace, and for generic when the client's is
	// an unknown browser. Default DefaultUserAgent. Keep it current: a stale string
	// is itself a rare fingerprint.
	UserAgentString string `yaml:"user_agent_string"`
	// ClientHints decides the Sec-CH-UA* request fields: keep, strip (remove them all)
	// or consistent (default when UserAgent is not keep; the low-entropy hints are
	// rewritten to match the agent sent, for https, loopback and localhost origins
	// only, as Chromium sends them, and removed elsewhere; the high-entropy ones removed; with
	// UserAgent keep, only the high-entropy ones are removed). Default keep when
	// UserAgent is keep.
	ClientHints string `yaml:"client_hints"`
	// AcceptLanguage, when set, replaces a client's Accept-Language (for example
	// "en-US,en;q=0.9"); an absent one stays absent. Default "": keep. To remove the
	// field, list it in RemoveHeaders.
	AcceptLanguage string `yaml:"accept_language"`
	// RemoveHeaders lists request fields to remove, by name or glob ('*' any run,
	// '?' one character; case-insensitive). Omitted: DefaultRemoveHeaders
	// (X-Client-Data); [] removes none.
	RemoveHeaders []string `yaml:"remove_headers"`
	// SetHeaders sets request fields after every other action (Name: value).
	SetHeaders map[string]string `yaml:"set_headers"`
	// GPC adds "Sec-GPC: 1" (Global Privacy Control) to every request.
	GPC bool `yaml:"gpc"`
	// DNT adds "DNT: 1" to every request. It is deprecated and rare, so it adds
	// fingerprinting entropy; prefer GPC.
	DNT bool `yaml:"dnt"`
	// Cookies is keep (default), strip (no Cookie leaves, no Set-Cookie reaches the
	// client) or third-party (the same, only for requests whose page is on another
	// site, judged from Sec-Fetch-Site, else Referer, against the target's
	// registrable domain).
	Cookies string `yaml:"cookies"`
	// SessionCookies drops Expires and Max-Age from every Set-Cookie, so cookies end
	// with the browser session. Deletions (Max-Age <= 0, Expires in the past) are left
	// as they are.
	SessionCookies bool `yaml:"session_cookies"`
	// BlockSetCookieFrom names domain lists; a response from a listed host loses its
	// Set-Cookie fields.
	BlockSetCookieFrom []string `yaml:"block_set_cookie_from"`
	// StripParams lists query parameter names to remove, exact or glob (gobwas/glob
	// syntax, case-sensitive, matched against the decoded name). The rest of the
	// query is kept byte for byte. Omitted: DefaultStripParams; [] strips none.
	StripParams []string `yaml:"strip_params"`
	// Trackers names domain lists whose hosts the engine blocks quietly (204 or an
	// empty 200 instead of the block page) for requests under this profile.
	Trackers []string `yaml:"trackers"`
	// AnonymousLog keeps what identifies the browser out of the access log for
	// requests under this profile: the User-Agent and Referer the client sent are
	// not recorded (the combined format prints "-", JSON omits the fields).
	// Default false: the access log records them as the client sent them (before
	// the profile rewrote them), for GoAccess and AWStats. The built-in privacy
	// profile sets it.
	AnonymousLog bool `yaml:"anonymous_log"`
	// HideOrigin, when present, rewrites responses to hide the origin's software
	// (reverse mode). Omitted: responses are left alone.
	HideOrigin *HideOriginConfig `yaml:"hide_origin"`
}

// HideOriginConfig is the origin-hiding section of a profile.
type HideOriginConfig struct {
	// Remove lists response fields to remove, by name or glob (as RemoveHeaders).
	// Omitted: DefaultHideOrigin; [] removes none.
	Remove []string `yaml:"remove"`
	// Server, when set, is sent as the Server field (after Remove ran). Default "":
	// no Server field (it is in the default Remove list).
	Server string `yaml:"server"`
}

// DefaultUserAgent is the agent sent by user_agent: replace when no
// user_agent_string is configured: a common desktop Chrome on Windows, in the form
// Chrome's own UA reduction produces, at the major version current in November
// 2026 (Chromium 156). Update it with each release train, or configure your own.
const DefaultUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"

// DefaultRemoveHeaders returns the request fields removed when remove_headers is
// omitted: X-Client-Data (Chrome's field-trial ID sent to Google properties).
func DefaultRemoveHeaders() []string { return []string{"X-Client-Data"} }

// DefaultStripParams returns the tracking parameters removed when strip_params is
// omitted: campaign tags (utm_*, mtm_*, pk_campaign…) and click identifiers of the
// large ad networks and mailers.
func DefaultStripParams() []string {
	return []string{
		"utm_*", "mtm_*", "pk_campaign", "pk_kwd", "pk_source", "pk_medium",
		"fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "gad_source", "msclkid",
		"mc_eid", "mc_cid", "igshid", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp",
		"hsCtaTracking", "yclid", "ysclid", "twclid", "ttclid", "li_fat_id", "mkt_tok",
		"oly_anon_id", "oly_enc_id", "_openstat", "vero_id", "vero_conv", "wickedid",
		"rb_clickid", "s_cid", "ef_id", "epik", "srsltid", "_ga", "_gl",
	}
}

// DefaultHideOrigin returns the response fields removed when hide_origin.remove is
// omitted: those naming the origin's server, framework, CMS, cache or backend.
func DefaultHideOrigin() []string {
	return []string{
		"Server", "X-Powered-By*", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Generator",
		"Via", "X-Varnish", "X-Backend*", "X-Served-By", "X-Server", "X-Runtime", "X-Version",
		"X-Drupal-*", "X-Litespeed-*", "X-Turbo-Charged-By", "X-Mod-Pagespeed", "X-Page-Speed",
		"X-Debug-Token*", "X-Envoy-Upstream-Service-Time", "X-Upstream*", "X-Hostname",
		"X-Cache-Hits", "X-Pingback", "X-Redirect-By",
	}
}

// mode is the value of an enumerated profile setting (referrer, user_agent,
// client_hints, cookies), parsed once at Compile.
type mode uint8

// The modes; each setting allows some of them.
const (
	modeKeep mode = iota + 1
	modeStrip
	modeSameOrigin
	modeOrigin
	modeReplace
	modeGeneric
	modeConsistent
	modeThirdParty
)

// String returns the mode's policy-file spelling.
func (m mode) String() string {
	switch m {
	case modeKeep:
		return "keep"
	case modeStrip:
		return "strip"
	case modeSameOrigin:
		return "same-origin"
	case modeOrigin:
		return "origin"
	case modeReplace:
		return "replace"
	case modeGeneric:
		return "generic"
	case modeConsistent:
		return "consistent"
	case modeThirdParty:
		return "third-party"
	}
	return "unknown"
}

// parseMode returns the mode spelled s among allowed, or def for "".
func parseMode(s string, def mode, allowed ...mode) (mode, error) {
	if s == "" {
		return def, nil
	}
	names := make([]string, len(allowed))
	for i, m := range allowed {
		if m.String() == s {
			return m, nil
		}
		names[i] = m.String()
	}
	return 0, fmt.Errorf("unknown value %q (want %s)", s, strings.Join(names, ", "))
}

func parseReferrer(s string) (mode, error) {
	return parseMode(s, modeKeep, modeKeep, modeStrip, modeSameOrigin, modeOrigin)
}

func parseUserAgent(s string) (mode, error) {
	return parseMode(s, modeKeep, modeKeep, modeReplace, modeGeneric)
}

// parseClientHints defaults to keep when the agent is kept, else consistent.
func parseClientHints(s string, ua mode) (mode, error) {
	def := modeConsistent
	if ua == modeKeep {
		def = modeKeep
	}
	return parseMode(s, def, modeKeep, modeStrip, modeConsistent)
}

func parseCookies(s string) (mode, error) {
	return parseMode(s, modeKeep, modeKeep, modeStrip, modeThirdParty)
}

// Validate checks the section and returns every problem found, with paths relative
// to the ProfileConfig ("remove_headers[2]"). List names are checked by Compile,
// which knows the lists.
func (c *ProfileConfig) Validate() []field.Error {
	var errs []field.Error
	if _, ok := ParseLevel(c.Level); !ok {
		errs = append(errs, field.Errorf("level", "unknown level %q (want transparent, anonymous or elite)", c.Level))
	}
	if _, err := parseReferrer(c.Referrer); err != nil {
		errs = append(errs, field.Errorf("referrer", "%v", err))
	}
	if _, err := parseUserAgent(c.UserAgent); err != nil {
		errs = append(errs, field.Errorf("user_agent", "%v", err))
	}
	if _, err := parseClientHints(c.ClientHints, modeKeep); err != nil {
		errs = append(errs, field.Errorf("client_hints", "%v", err))
	}
	if _, err := parseCookies(c.Cookies); err != nil {
		errs = append(errs, field.Errorf("cookies", "%v", err))
	}
	if c.UserAgentString != "" && !validValue(c.UserAgentString) {
		errs = append(errs, field.Errorf("user_agent_string", "not a valid header value"))
	}
	if c.AcceptLanguage != "" {
		if !validValue(c.AcceptLanguage) {
			errs = append(errs, field.Errorf("accept_language", "not a valid header value"))
		} else if _, _, err := language.ParseAcceptLanguage(c.AcceptLanguage); err != nil {
			errs = append(errs, field.Errorf("accept_language", "not an Accept-Language value: %v", err))
		}
	}
	for i, pat := range c.RemoveHeaders {
		if err := checkHeaderPattern(pat); err != nil {
			errs = append(errs, field.Errorf(index("remove_headers", i), "%v", err))
		}
	}
	seen := make(map[string]string, len(c.SetHeaders))
	for _, name := range slices.Sorted(maps.Keys(c.SetHeaders)) {
		v := c.SetHeaders[name]
		path := "set_headers." + name
		canonical := http.CanonicalHeaderKey(name)
		other, dup := seen[canonical]
		seen[canonical] = name
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			errs = append(errs, field.Errorf(path, "not a valid header name"))
		case dup:
			errs = append(errs, field.Errorf(path, "the same field as %q (names ignore case)", other))
		case forbiddenToSet(name):
			errs = append(errs, field.Errorf(path, "%s is managed by the proxy and cannot be set", name))
		case !validValue(v):
			errs = append(errs, field.Errorf(path, "not a valid header value"))
		}
	}
	for i, pat := range c.StripParams {
		if pat == "" {
			errs = append(errs, field.Errorf(index("strip_params", i), "empty pattern"))
		} else if _, err := glob.Compile(pat); err != nil {
			errs = append(errs, field.Errorf(index("strip_params", i), "bad glob: %v", err))
		}
	}
	errs = checkNames(errs, "block_set_cookie_from", c.BlockSetCookieFrom)
	errs = checkNames(errs, "trackers", c.Trackers)
	if h := c.HideOrigin; h != nil {
		for i, pat := range h.Remove {
			if err := checkHeaderPattern(pat); err != nil {
				errs = append(errs, field.Errorf(index("hide_origin.remove", i), "%v", err))
			}
		}
		if h.Server != "" && !validValue(h.Server) {
			errs = append(errs, field.Errorf("hide_origin.server", "not a valid header value"))
		}
	}
	return errs
}

// ConfigError is returned by Compile when the section is invalid or names a list
// that does not exist. Errs carry paths relative to the ProfileConfig; from
// CompileProfiles, Profile is "" and the paths start with the profile's name.
type ConfigError struct {
	Profile string        // the profile's name; "" from CompileProfiles
	Errs    []field.Error // every problem, in field order
}

// Error implements error.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.Profile == "" {
		b.WriteString("anonymize profiles:")
	} else {
		fmt.Fprintf(&b, "anonymize profile %q:", e.Profile)
	}
	for i, fe := range e.Errs {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Compile validates cfg and builds the profile called name. lists resolves the
// domain-list names in block_set_cookie_from and trackers (nil: no lists exist).
// Errors are *ConfigError.
func Compile(name string, cfg ProfileConfig, lists func(name string) (filter.Matcher, bool)) (*Profile, error) {
	errs := cfg.Validate()
	resolve := func(path string, names []string) []filter.Matcher {
		var ms []filter.Matcher
		for i, n := range names {
			if n == "" {
				continue // reported by Validate
			}
			var m filter.Matcher
			ok := false
			if lists != nil {
				m, ok = lists(n)
			}
			if !ok || m == nil {
				errs = append(errs, field.Errorf(index(path, i), "unknown list %q", n))
				continue
			}
			ms = append(ms, m)
		}
		return ms
	}
	p := &Profile{name: name, now: time.Now}
	p.setCookieBlock = resolve("block_set_cookie_from", cfg.BlockSetCookieFrom)
	p.trackers = resolve("trackers", cfg.Trackers)
	if len(errs) > 0 {
		return nil, &ConfigError{Profile: name, Errs: errs}
	}
	p.trackerNames = append([]string(nil), cfg.Trackers...)
	p.level, _ = ParseLevel(cfg.Level)
	p.referrer, _ = parseReferrer(cfg.Referrer) // validated above
	p.cookies, _ = parseCookies(cfg.Cookies)
	p.sessionCookies = cfg.SessionCookies
	p.anonymousLog = cfg.AnonymousLog
	p.ua = compileUserAgent(cfg)
	p.acceptLanguage = cfg.AcceptLanguage
	p.removeHeaders = compileHeaderSet(defaulted(cfg.RemoveHeaders, DefaultRemoveHeaders))
	p.stripParams = compileParamSet(defaulted(cfg.StripParams, DefaultStripParams))
	if cfg.GPC {
		p.set = append(p.set, headerValue{"Sec-Gpc", "1"})
	}
	if cfg.DNT {
		p.set = append(p.set, headerValue{"Dnt", "1"})
	}
	for _, n := range slices.Sorted(maps.Keys(cfg.SetHeaders)) {
		p.set = append(p.set, headerValue{http.CanonicalHeaderKey(n), cfg.SetHeaders[n]})
	}
	if h := cfg.HideOrigin; h != nil {
		p.hideOrigin = compileHeaderSet(defaulted(h.Remove, DefaultHideOrigin))
		p.server = h.Server
	}
	return p, nil
}

func checkNames(errs []field.Error, path string, names []string) []field.Error {
	for i, n := range names {
		if n == "" {
			errs = append(errs, field.Errorf(index(path, i), "empty list name"))
		}
	}
	return errs
}

// forbiddenToSet reports whether set_headers may not set name: fields that frame the
// message or that the proxy manages per hop.
func forbiddenToSet(name string) bool {
	c := http.CanonicalHeaderKey(name)
	switch c {
	case "Host", "Content-Length":
		return true
	}
	return relay.IsHopByHop(c)
}

func validValue(v string) bool {
	return httpguts.ValidHeaderFieldValue(v) && strings.TrimSpace(v) == v
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// defaulted returns v, or def() when v is nil (omitted in YAML; [] is kept as empty).
func defaulted(v []string, def func() []string) []string {
	if v == nil {
		return def()
	}
	return v
}
