package cache

import (
	"net/http"
	"strings"
	"time"
)

// httpDateShapes are the three HTTP-date forms of RFC 9110 §5.6.7, as
// patterns: 'a' a letter, '9' a digit, '_' a digit or a space, '*' one or more
// letters (RFC 850's full day name); anything else stands for itself.
var httpDateShapes = [...]string{
	"aaa, 99 aaa 9999 99:99:99 aaa", // IMF-fixdate
	"*, 99-aaa-99 99:99:99 aaa",     // RFC 850
	"aaa aaa _9 99:99:99 9999",      // asctime
}

// parseHTTPDate parses an HTTP-date strictly: only the exact shapes of RFC
// 9110 §5.6.7 are accepted (day and month names and "GMT" in any case), so
// that a one-digit hour, doubled spaces or a zone other than GMT make the date
// invalid, as RFC 9111 §5.3 requires for Expires. http.ParseTime, built on
// time.Parse, accepts all of those.
func parseHTTPDate(s string) (time.Time, bool) {
	for _, p := range httpDateShapes {
		if shapeMatches(s, p) {
			t, err := http.ParseTime(strings.ToUpper(s))
			if err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func shapeMatches(s, p string) bool {
	i := 0
	for j := 0; j < len(p); j++ {
		switch p[j] {
		case '*':
			n := 0
			for i < len(s) && isLetter(s[i]) {
				i, n = i+1, n+1
			}
			if n == 0 {
				return false
			}
			continue
		}
		if i >= len(s) {
			return false
		}
		c := s[i]
		switch p[j] {
		case 'a':
			if !isLetter(c) {
				return false
			}
		case '9':
			if c < '0' || c > '9' {
				return false
			}
		case '_':
			if c != ' ' && (c < '0' || c > '9') {
				return false
			}
		default:
			if c != p[j] {
				return false
			}
		}
		i++
	}
	return i == len(s)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
