package h2

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2"
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

// A field sent several times reaches the handler with every value, in
// order, and a field sent once with its one value (the values share one
// array, the stream's own for a few fields, one made for more: appending
// to one must not touch another).
func TestRepeatedRequestFields(t *testing.T) {
	saw := make(chan http.Header, 1)
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header["Accept"] = append(r.Header["Accept"], "added")
		saw <- r.Header.Clone()
	})})
	c.get(1, "/", "accept", "a", "x-one", "1", "accept", "b", "x-two", "2", "accept", "c")
	if r := c.response(1); r.status != "200" {
		t.Fatalf("status %s", r.status)
	}
	h := <-saw
	want := http.Header{"Accept": {"a", "b", "c", "added"}, "X-One": {"1"}, "X-Two": {"2"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("handler saw %v, want %v", h, want)
	}
	c.get(3, "/", "accept", "a", "x-one", "1", "accept", "b")
	if r := c.response(3); r.status != "200" {
		t.Fatalf("status %s", r.status)
	}
	h = <-saw
	want = http.Header{"Accept": {"a", "b", "added"}, "X-One": {"1"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("handler saw %v, want %v", h, want)
	}
}

// Answers decode with the client's own HPACK decoder, statuses in the
// static table and not, content-length set by the handler and computed:
// and after the client asks for a smaller header table (SETTINGS
// HEADER_TABLE_SIZE 0), the next block opens with the table size update
// RFC 7541 §4.2 requires, and the later ones still decode.
func TestResponseHeaderEncoding(t *testing.T) {
	for _, size := range []uint32{4096, 0} {
		t.Run(fmt.Sprint("table", size), func(t *testing.T) {
			c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				code, _ := strconv.Atoi(r.URL.Query().Get("s"))
				if r.URL.Query().Get("cl") != "" && code != 204 && code != 304 {
					w.Header().Set("Content-Length", "5")
				}
				w.Header().Set("X-Status", strconv.Itoa(code))
				w.WriteHeader(code)
				if code != 204 && code != 304 {
					io.WriteString(w, "hello")
				}
			})}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: size})
			c.dec.SetAllowedMaxDynamicTableSize(size)
			id := uint32(1)
			for _, code := range []int{200, 404, 418, 204, 500, 200, 304, 503, 200} {
				for _, cl := range []string{"", "1"} {
					c.get(id, fmt.Sprintf("/?s=%d&cl=%s", code, cl))
					f := c.want(http2.FrameHeaders).(*http2.HeadersFrame)
					block := f.HeaderBlockFragment()
					if size == 0 && id == 1 && block[0] != 0x20 {
						t.Fatalf("first block opens with %#x, want a table size update to 0 (0x20)", block[0])
					}
					fs := c.decode(block)
					got := map[string]string{}
					for _, hf := range fs {
						got[hf.Name] = hf.Value
					}
					wantCL := "5"
					if code == 204 || code == 304 {
						wantCL = ""
					}
					if got[":status"] != strconv.Itoa(code) || got["x-status"] != strconv.Itoa(code) || got["content-length"] != wantCL {
						t.Fatalf("status %d (cl %q): fields %v", code, cl, got)
					}
					if !f.StreamEnded() {
						if d := c.want(http2.FrameData).(*http2.DataFrame); string(d.Data()) != "hello" || !d.StreamEnded() {
							t.Fatalf("status %d: body %q", code, d.Data())
						}
					}
					id += 2
				}
			}
		})
	}
}

// Fields sent again go out as the bytes the encoder gave them last time
// (the field cache): answers must decode, with the client's own decoder,
// to exactly the fields the handler set while fields repeat, rotate
// through more names than the cache holds, change value (which adds to the
// dynamic table and moves every index), and while the client shrinks the
// table to nothing (the next block opens with a table size update, RFC 7541
// §4.2, not with a field from the cache) and allows it again.
func TestFieldCache(t *testing.T) {
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		for k, v := range fieldCacheFields(i) {
			w.Header().Set(k, v)
		}
		io.WriteString(w, "ok")
	})})
	id := uint32(1)
	for i := range 90 {
		resize := -1
		switch i {
		case 30:
			resize = 0
		case 60:
			resize = 4096
		}
		if resize >= 0 {
			if err := c.fr.WriteSettings(setting(http2.SettingHeaderTableSize, uint32(resize))); err != nil {
				t.Fatal(err)
			}
		}
		c.get(id, fmt.Sprintf("/?i=%d", i))
		f := c.want(http2.FrameHeaders).(*http2.HeadersFrame)
		block := f.HeaderBlockFragment()
		if resize == 0 && block[0]&0xe0 != 0x20 {
			t.Fatalf("request %d, after SETTINGS_HEADER_TABLE_SIZE %d: block opens with %#x, want a table size update", i, resize, block[0])
		}
		got := map[string]string{}
		for _, hf := range c.decode(block) {
			got[hf.Name] = hf.Value
		}
		want := map[string]string{":status": "200", "content-length": "2"}
		for k, v := range fieldCacheFields(i) {
			want[strings.ToLower(k)] = v
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d: fields %v, want %v", i, got, want)
		}
		if d := c.want(http2.FrameData).(*http2.DataFrame); string(d.Data()) != "ok" {
			t.Fatalf("request %d: body %q", i, d.Data())
		}
		id += 2
	}
}

// fieldCacheFields is the response header of TestFieldCache's request i.
func fieldCacheFields(i int) map[string]string {
	return map[string]string{
		"Content-Type":                    "text/plain",
		"X-Same":                          "constant",
		fmt.Sprintf("X-Rot-%d", i%11):     "v",
		fmt.Sprintf("X-Rot-%d", (i+5)%11): "w",
		"X-Changing":                      strconv.Itoa(i / 4),
		"Date":                            "Mon, 07 Dec 2026 17:00:0" + strconv.Itoa(i/7%10) + " GMT",
	}
}
