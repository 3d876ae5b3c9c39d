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
