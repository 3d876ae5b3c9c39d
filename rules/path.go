package rules

import "strings"

// PathRefused reports whether a decoded URL path (url.URL.Path) is one every
// door refuses with 400 rather than guess how the site behind would read it:
// a "." or ".." segment (which an origin, or a browser following a redirect,
// resolves, so that /public/../admin reaches /admin past a rule on /admin),
// or a NUL or another control byte (from %00, %0a…), which origins may
// truncate at or split on. Browsers resolve dot segments before sending, so
// only crafted requests carry them. It does not allocate.
func PathRefused(decoded string) bool {
	return hasDotSegment(decoded) || hasControlByte(decoded)
}

// JudgedPath is the path the reverse door's policy judges: the decoded path
// (so /%61dmin and /admin%2fusers are read as /admin and /admin/users) with
// doubled slashes merged (//admin is /admin), the most permissive reading an
// origin might make of it. It allocates only when there are slashes to merge.
func JudgedPath(decoded string) string {
	if !strings.Contains(decoded, "//") {
		return decoded
	}
	var b strings.Builder
	b.Grow(len(decoded))
	for i := 0; i < len(decoded); i++ {
		if decoded[i] == '/' && i > 0 && decoded[i-1] == '/' {
			continue
		}
		b.WriteByte(decoded[i])
	}
	return b.String()
}

// hasControlByte reports whether the decoded path holds a NUL or another control
// byte.
func hasControlByte(decoded string) bool {
	for i := 0; i < len(decoded); i++ {
		if decoded[i] < 0x20 || decoded[i] == 0x7f {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether path holds a "." or ".." segment.
func hasDotSegment(path string) bool {
	for len(path) > 0 {
		i := strings.IndexByte(path, '/')
		seg := path
		if i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// MemberReadings returns the other ways a site behind the reverse door may
// read a decoded path that JudgedPath gives as judged, for the door to check
// that none of them is decided differently: "\" read as "/" (IIS), ";"
// parameters dropped from each segment, so that "..;" is ".." (Java servlet
// containers), a segment's trailing dots and spaces dropped (Windows), the
// dot segments these leave resolved, and each of those in lower case (IIS
// and Windows file systems ignore case). It returns nothing, without
// allocating, for a path none of this applies to: no upper-case letter, no
// "\", no ";", no segment ending in a dot or a space.
func MemberReadings(judged string) []string {
	if !ambiguousPath(judged) {
		return nil
	}
	asIs := memberPath(judged)
	lower := strings.ToLower(asIs)
	var out []string
	for _, p := range [...]string{asIs, lower} {
		if p != judged && (len(out) == 0 || out[0] != p) {
			out = append(out, p)
		}
	}
	return out
}

// ambiguousPath reports whether MemberReadings has anything to do for p.
func ambiguousPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'A' <= c && c <= 'Z', c == '\\', c == ';':
			return true
		case c == '.' || c == ' ':
			if i+1 == len(p) || p[i+1] == '/' {
				return true
			}
		}
	}
	return false
}

// memberPath is p read as the members MemberReadings names do, case kept.
func memberPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			s = s[:j]
		}
		if strings.Trim(s, ".") != "" { // not a dot segment: Windows drops trailing dots and spaces
			s = strings.TrimRight(s, ". ")
		}
		switch {
		case s == "." || (s == "" && i > 0 && i < len(segs)-1):
			continue
		case s == "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			continue
		}
		out = append(out, s)
	}
	if len(out) == 1 && out[0] == "" {
		return "/"
	}
	return strings.Join(out, "/")
}
