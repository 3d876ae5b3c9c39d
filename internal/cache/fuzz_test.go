package cache

import (
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/internal/fieldtext"
)

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60", `private="X-A, X-B", no-cache="Y"`, "s-maxage=5,must-revalidate",
		`max-age="60"`, "max-age =1", "no-cache=\"", ",,,", "max-stale", "stale-if-error=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{"Cache-Control": {v}}
		cc := parseRespCC(h)
		if cc.maxAge < -1 || cc.sMaxAge < -1 || cc.maxAge > maxDelta {
			t.Fatalf("%q: max-age %v s-maxage %v", v, cc.maxAge, cc.sMaxAge)
		}
		for _, n := range append(cc.privateFields, cc.noCacheFields...) {
			if !fieldtext.IsToken(n) {
				t.Fatalf("%q: field name %q", v, n)
			}
		}
		r := parseReqCC(h)
		if r.maxAge < -1 || r.maxStale < -1 || r.minFresh < -1 {
			t.Fatalf("%q: request %+v", v, r)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-5", "bytes=5-", "bytes=9-3", "bytes=0-1,2-3", "items=1-2", "bytes=-0"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		start, end, ok := parseRange(v, size)
		if !ok || start == -1 {
			return
		}
		if start < 0 || end < start || end >= size {
			t.Fatalf("%q size %d: %d-%d", v, size, start, end)
		}
	})
}
