package anonymize

import (
	"net/http"
	"strings"
)

// uaPolicy is a compiled user_agent / client_hints setting.
type uaPolicy struct {
	mode  mode   // keep, replace, generic
	hints mode   // keep, strip, consistent
	fixed string // the agent for replace, and for generic when the client's is unknown
	// fixedHints are the low-entropy hints consistent with fixed.
	fixedHints lowHints
}

// lowHints are the low-entropy Sec-CH-UA values a Chromium browser sends with every
// secure request; ok is false for agents that send no client hints.
type lowHints struct {
	ua, mobile, platform string
	ok                   bool
}

func compileUserAgent(cfg ProfileConfig) uaPolicy {
	u := uaPolicy{fixed: orDefault(cfg.UserAgentString, DefaultUserAgent)}
	u.mode, _ = parseUserAgent(cfg.UserAgent) // validated by Compile
	u.hints, _ = parseClientHints(cfg.ClientHints, u.mode)
	if a, ok := classify(u.fixed); ok {
		u.fixedHints = a.hints()
	}
	return u
}

// hintRemoval says which Sec-CH-UA* fields the request's sweep removes.
type hintRemoval uint8

const (
	hintsKept        hintRemoval = iota // none
	hintsHighEntropy                    // all but Sec-CH-UA, -Mobile and -Platform
	hintsAll                            // every Sec-CH-UA* field
)

// apply rewrites User-Agent and the low-entropy Sec-CH-UA fields of h, and says
// which client hints the sweep (Profile.sweep) must remove. secure tells whether
// the request goes to a potentially trustworthy origin (https, loopback,
// localhost): Chromium sends client hints only there, so consistent hints are
// set only there and removed elsewhere.
func (u *uaPolicy) apply(h http.Header, secure bool) hintRemoval {
	var hints lowHints
	switch u.mode {
	case modeReplace:
		setValue(h, "User-Agent", u.fixed)
		hints = u.fixedHints
	case modeGeneric:
		vs := h["User-Agent"]
		if len(vs) == 0 {
			break // absent stays absent; an agent-less client sends no hints either
		}
		if a, ok := classify(vs[0]); ok {
			setValue(h, "User-Agent", a.String())
			hints = a.hints()
		} else if browserLike(vs[0]) {
			setValue(h, "User-Agent", u.fixed)
			hints = u.fixedHints
		}
		// A tool or a bot (curl, wget, a feed reader…) keeps its own agent and
		// sends no hints: dressed as Chrome, it would be the one "Chrome" without
		// Chrome's other fields.
	}
	switch {
	case u.hints == modeStrip:
		return hintsAll
	case u.hints != modeConsistent:
		return hintsKept
	case u.mode == modeKeep:
		return hintsHighEntropy
	case !hints.ok: // the agent sent is not a Chromium one: it sends no hints
		return hintsAll
	case !secure: // Chromium sends no client hints to an insecure origin
		return hintsAll
	}
	setValue(h, "Sec-Ch-Ua", hints.ua)
	setValue(h, "Sec-Ch-Ua-Mobile", hints.mobile)
	setValue(h, "Sec-Ch-Ua-Platform", hints.platform)
	return hintsHighEntropy
}

// clientHint reports whether the field called name is a Sec-CH-UA* hint that r
// removes.
func (r hintRemoval) clientHint(name string) bool {
	if r == hintsKept || !hasPrefixFold(name, "sec-ch-ua") {
		return false
	}
	return r == hintsAll || !(strings.EqualFold(name, "Sec-Ch-Ua") || strings.EqualFold(name, "Sec-Ch-Ua-Mobile") ||
		strings.EqualFold(name, "Sec-Ch-Ua-Platform"))
}

// browserLike reports whether an agent classify does not know still claims to
// be a browser: "Mozilla/…", and not a "compatible;" agent, a bot, spider or
// crawler. generic maps such a rare browser to the fixed agent, and leaves tools
// and bots alone.
func browserLike(ua string) bool {
	if !strings.HasPrefix(ua, "Mozilla/") {
		return false
	}
	l := strings.ToLower(ua) // rare agents only
	for _, s := range [...]string{"compatible;", "bot", "spider", "crawl"} {
		if strings.Contains(l, s) {
			return false
		}
	}
	return true
}

type browser uint8

const (
	browserChrome browser = iota + 1 // and every other Chromium browser but desktop Edge
	browserEdge
	browserFirefox
	browserSafari // and every browser on iOS
)

type platform uint8

const (
	platformWindows platform = iota + 1
	platformMac
	platformLinux
	platformAndroid
	platformIPhone
	platformIPad
)

// agent is what generic keeps of a user agent: family, platform and major version.
type agent struct {
	browser  browser
	platform platform
	major    string // decimal, 1–4 digits
}

// classify reads the family, platform and major version from a browser's
// User-Agent. ok is false for anything else (curl, bots, rare browsers).
func classify(ua string) (a agent, ok bool) {
	switch {
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPod"):
		a.platform = platformIPhone
	case strings.Contains(ua, "iPad"):
		a.platform = platformIPad
	case strings.Contains(ua, "Android"):
		a.platform = platformAndroid
	case strings.Contains(ua, "Windows"):
		a.platform = platformWindows
	case strings.Contains(ua, "Macintosh") || strings.Contains(ua, "Mac OS X"):
		a.platform = platformMac
	case strings.Contains(ua, "Linux") || strings.Contains(ua, "X11") || strings.Contains(ua, "CrOS"):
		a.platform = platformLinux
	default:
		return a, false
	}
	if a.platform == platformIPhone || a.platform == platformIPad {
		a.browser = browserSafari
		if a.major = versionAfter(ua, "Version/"); a.major == "" {
			a.major = versionAfter(ua, " OS ")
		}
		return a, a.major != ""
	}
	switch {
	case a.platform != platformAndroid && strings.Contains(ua, "Edg/"):
		a.browser, a.major = browserEdge, versionAfter(ua, "Edg/")
	case strings.Contains(ua, "Firefox/"):
		a.browser, a.major = browserFirefox, versionAfter(ua, "Firefox/")
	case strings.Contains(ua, "Chrome/"):
		a.browser, a.major = browserChrome, versionAfter(ua, "Chrome/")
	case strings.Contains(ua, "Safari/") && strings.Contains(ua, "Version/") && a.platform == platformMac:
		a.browser, a.major = browserSafari, versionAfter(ua, "Version/")
	default:
		return a, false
	}
	return a, a.major != ""
}

// versionAfter returns the 1–4 digits following the first token in ua, or "".
func versionAfter(ua, token string) string {
	i := strings.Index(ua, token)
	if i < 0 {
		return ""
	}
	s := ua[i+len(token):]
	n := 0
	for n < len(s) && n < 5 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || n > 4 || s[0] == '0' {
		return ""
	}
	return s[:n]
}

// String returns the reduced agent string: the one the same browser at the same
// major version on the same platform family sends with every detail frozen.
func (a agent) String() string {
	n := a.major
	switch a.browser {
	case browserFirefox:
		switch a.platform {
		case platformAndroid:
			return "Mozilla/5.0 (Android 10; Mobile; rv:" + n + ".0) Gecko/" + n + ".0 Firefox/" + n + ".0"
		case platformMac:
			return "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:" + n + ".0) Gecko/20100101 Firefox/" + n + ".0"
		case platformLinux:
			return "Mozilla/5.0 (X11; Linux x86_64; rv:" + n + ".0) Gecko/20100101 Firefox/" + n + ".0"
		}
		return "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:" + n + ".0) Gecko/20100101 Firefox/" + n + ".0"
	case browserSafari:
		switch a.platform {
		case platformIPhone:
			return "Mozilla/5.0 (iPhone; CPU iPhone OS " + n + "_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/" + n + ".0 Mobile/15E148 Safari/604.1"
		case platformIPad:
			return "Mozilla/5.0 (iPad; CPU OS " + n + "_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/" + n + ".0 Mobile/15E148 Safari/604.1"
		}
		return "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/" + n + ".0 Safari/605.1.15"
	}
	var plat, tail string
	switch a.platform {
	case platformAndroid:
		plat, tail = "Linux; Android 10; K", " Mobile Safari/537.36"
	case platformMac:
		plat, tail = "Macintosh; Intel Mac OS X 10_15_7", " Safari/537.36"
	case platformLinux:
		plat, tail = "X11; Linux x86_64", " Safari/537.36"
	default:
		plat, tail = "Windows NT 10.0; Win64; x64", " Safari/537.36"
	}
	s := "Mozilla/5.0 (" + plat + ") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" + n + ".0.0.0" + tail
	if a.browser == browserEdge {
		s += " Edg/" + n + ".0.0.0"
	}
	return s
}

// hints returns the low-entropy client hints a Chromium browser with this agent
// sends; Firefox and Safari send none.
func (a agent) hints() lowHints {
	if a.browser != browserChrome && a.browser != browserEdge {
		return lowHints{}
	}
	brand := `"Google Chrome"`
	if a.browser == browserEdge {
		brand = `"Microsoft Edge"`
	}
	h := lowHints{
		ua:       `"Chromium";v="` + a.major + `", ` + brand + `;v="` + a.major + `", "Not_A Brand";v="99"`,
		mobile:   "?0",
		platform: `"Windows"`,
		ok:       true,
	}
	switch a.platform {
	case platformAndroid:
		h.mobile, h.platform = "?1", `"Android"`
	case platformMac:
		h.platform = `"macOS"`
	case platformLinux:
		h.platform = `"Linux"`
	}
	return h
}
