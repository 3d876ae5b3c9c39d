package h2

import (
	"net/url"
	"reflect"
	"testing"
)

// checkPath asserts that parsePath gives what url.ParseRequestURI gives
// (the same URL, or an error for both).
func checkPath(t *testing.T, p string) {
	t.Helper()
	want, werr := url.ParseRequestURI(p)
	var got url.URL
	gerr := parsePath(p, &got)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%q: error %v, url.ParseRequestURI's %v", p, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, *want) {
		t.Fatalf("%q: %#v, url.ParseRequestURI gives %#v", p, got, *want)
	}
}

// The :path fast path builds exactly the URL url.ParseRequestURI builds,
// for every byte in the path and in the query, and for the shapes of a
// query (none, empty, several '?').
func TestParsePathMatchesURL(t *testing.T) {
	for _, p := range []string{"/", "/small", "/a/b.c?x=1&y=2", "/a?", "/a??", "/a?b?", "/?", "//x/y", "/a%20b",
		"/a b", "/é", "/a?é", "/a?\x01", "/a\x7f", "*", "x", "", "/a#f", "/a?b#f", "/a+b;c=d@e:f!g(h)*i'j,k$l&m~n"} {
		checkPath(t, p)
	}
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		checkPath(t, "/a"+b+"z")
		checkPath(t, "/a?q"+b+"z")
		checkPath(t, "/a"+b)
	}
}

func FuzzParsePath(f *testing.F) {
	f.Add("/small?x=1")
	f.Add("/a%2Fb?")
	f.Fuzz(func(t *testing.T, p string) { checkPath(t, p) })
}
