package auth

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzParseFiles checks that the htpasswd and group parsers never panic, that
// every accepted user has a well-formed name and a bcrypt hash, and that group
// members are known users. Seeds: testdata/fuzz/FuzzParseFiles.
func FuzzParseFiles(f *testing.F) {
	f.Fuzz(func(t *testing.T, htpasswd, groups string) {
		users, err := parseHtpasswd(strings.NewReader(htpasswd), "htpasswd")
		if err != nil {
			return
		}
		for u, h := range users {
			if validUser(u) != "" || !isBcrypt(string(h)) {
				t.Fatalf("accepted user %q hash %q", u, h)
			}
		}
		byUser, err := parseGroups(strings.NewReader(groups), "groups", users)
		if err != nil {
			return
		}
		for u, gs := range byUser {
			if _, ok := users[u]; !ok || len(gs) == 0 {
				t.Fatalf("group member %q unknown or without groups", u)
			}
		}
	})
}

// FuzzParseProxyAuthorization checks that any header value parses without
// panicking into a non-empty, colon-free user when ok. Seeds:
// testdata/fuzz/FuzzParseProxyAuthorization.
func FuzzParseProxyAuthorization(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		user, _, ok := ParseProxyAuthorization(http.Header{"Proxy-Authorization": {v}})
		if ok && (user == "" || strings.Contains(user, ":")) {
			t.Fatalf("%q: user %q", v, user)
		}
	})
}
