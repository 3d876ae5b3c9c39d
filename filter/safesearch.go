package filter

import (
	"strings"

	"github.com/portcullis/portcullis/internal/config/field"
)

// YouTube restriction levels for SafeSearch.YouTube.
const (
	YouTubeOff      = "off"      // no restriction (the zero value "" means the same)
	YouTubeModerate = "moderate" // restrictmoderate.youtube.com
	YouTubeStrict   = "strict"   // restrict.youtube.com
)

// The enforcement targets the search engines publish: a name resolving to one of
// these makes the engine serve its safe mode whatever the user's settings are.
const (
	GoogleSafeTarget      = "forcesafesearch.google.com"
	YouTubeStrictTarget   = "restrict.youtube.com"
	YouTubeModerateTarget = "restrictmoderate.youtube.com"
	BingSafeTarget        = "strict.bing.com"
	DuckDuckGoSafeTarget  = "safe.duckduckgo.com"
)

// SafeSearch says which search engines must be forced into their safe mode. It is
// also the policy-file section `safesearch: {google: on, youtube: strict, bing: on,
// duckduckgo: on}`; the zero value enforces nothing.
type SafeSearch struct {
	// Google forces SafeSearch on every Google search domain (www.google.<tld> and
	// google.<tld> for each country domain Google serves). Default off.
	Google bool `yaml:"google"`
	// YouTube is "strict", "moderate" or "off" (default off).
	YouTube string `yaml:"youtube"`
	// Bing forces strict SafeSearch on www.bing.com and bing.com. Default off.
	Bing bool `yaml:"bing"`
	// DuckDuckGo forces safe search on duckduckgo.com, www.duckduckgo.com and
	// start.duckduckgo.com. Default off.
	DuckDuckGo bool `yaml:"duckduckgo"`
}

// Validate reports a YouTube level other than strict, moderate or off.
func (s *SafeSearch) Validate() []field.Error {
	switch s.YouTube {
	case "", YouTubeOff, YouTubeModerate, YouTubeStrict:
		return nil
	}
	return []field.Error{field.Errorf("youtube", "must be strict, moderate or off, not %q", s.YouTube)}
}

// Enabled reports whether s enforces anything.
func (s SafeSearch) Enabled() bool {
	return s.Google || s.Bing || s.DuckDuckGo || (s.YouTube != "" && s.YouTube != YouTubeOff)
}

// Merge returns the stricter of s and o for each engine (strict beats moderate
// beats off), for a client that belongs to several groups.
func (s SafeSearch) Merge(o SafeSearch) SafeSearch {
	s.Google = s.Google || o.Google
	s.Bing = s.Bing || o.Bing
	s.DuckDuckGo = s.DuckDuckGo || o.DuckDuckGo
	if youTubeRank(o.YouTube) > youTubeRank(s.YouTube) {
		s.YouTube = o.YouTube
	}
	return s
}

func youTubeRank(level string) int {
	switch level {
	case YouTubeStrict:
		return 2
	case YouTubeModerate:
		return 1
	}
	return 0
}

// SafeSearchTarget returns the name that host must be answered with (as a CNAME
// for DNS, or the address to connect to for a CONNECT) to enforce s, and ok=false
// when host is not a search host s covers. host is lowercased, without a port or a
// trailing dot. It does not allocate.
func SafeSearchTarget(host string, s SafeSearch) (target string, ok bool) {
	switch host {
	case "www.youtube.com", "m.youtube.com", "youtubei.googleapis.com",
		"youtube.googleapis.com", "www.youtube-nocookie.com":
		switch s.YouTube {
		case YouTubeStrict:
			return YouTubeStrictTarget, true
		case YouTubeModerate:
			return YouTubeModerateTarget, true
		}
		return "", false
	case "www.bing.com", "bing.com":
		if s.Bing {
			return BingSafeTarget, true
		}
		return "", false
	case "duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com":
		if s.DuckDuckGo {
			return DuckDuckGoSafeTarget, true
		}
		return "", false
	}
	if !s.Google {
		return "", false
	}
	host = strings.TrimPrefix(host, "www.")
	tld, found := strings.CutPrefix(host, "google.")
	if !found || !isGoogleTLD(tld) {
		return "", false
	}
	return GoogleSafeTarget, true
}

// isGoogleTLD reports whether google.<tld> is one of Google's search domains
// (google.com/supported_domains). A switch keeps the table immutable and compiles
// to a binary search.
func isGoogleTLD(tld string) bool {
	switch tld {
	case "com", "ad", "ae", "com.af", "com.ag", "com.ai", "al", "am", "co.ao", "com.ar",
		"as", "at", "com.au", "az", "ba", "com.bd", "be", "bf", "bg", "com.bh", "bi",
		"bj", "com.bn", "com.bo", "com.br", "bs", "bt", "co.bw", "by", "com.bz", "ca",
		"cat", "cd", "cf", "cg", "ch", "ci", "co.ck", "cl", "cm", "cn", "com.co",
		"co.cr", "com.cu", "cv", "com.cy", "cz", "de", "dj", "dk", "dm", "com.do",
		"dz", "com.ec", "ee", "com.eg", "es", "com.et", "fi", "com.fj", "fm", "fr",
		"ga", "ge", "gg", "com.gh", "com.gi", "gl", "gm", "gr", "com.gt", "gy",
		"com.hk", "hn", "hr", "ht", "hu", "co.id", "ie", "co.il", "im", "co.in",
		"iq", "is", "it", "je", "com.jm", "jo", "co.jp", "co.ke", "com.kh", "ki",
		"kg", "co.kr", "com.kw", "kz", "la", "com.lb", "com.lc", "li", "lk", "co.ls",
		"lt", "lu", "lv", "com.ly", "co.ma", "md", "me", "mg", "mk", "ml", "com.mm",
		"mn", "ms", "com.mt", "mu", "mv", "mw", "com.mx", "com.my", "co.mz",
		"com.na", "com.nf", "com.ng", "com.ni", "ne", "nl", "no", "com.np", "nr",
		"nu", "co.nz", "com.om", "com.pa", "com.pe", "com.pg", "com.ph", "com.pk",
		"pl", "pn", "com.pr", "ps", "pt", "com.py", "com.qa", "ro", "ru", "rw",
		"rs", "com.sa", "com.sb", "sc", "se", "com.sg", "sh", "si", "sk", "com.sl",
		"sn", "so", "sm", "sr", "st", "com.sv", "td", "tg", "co.th", "com.tj", "tk",
		"tl", "tm", "tn", "to", "com.tr", "tt", "com.tw", "co.tz", "com.ua",
		"co.ug", "co.uk", "com.uy", "co.uz", "com.vc", "co.ve", "vg", "co.vi",
		"com.vn", "vu", "ws", "co.za", "co.zm", "co.zw":
		return true
	}
	return false
}
