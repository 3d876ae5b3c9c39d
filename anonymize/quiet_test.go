package anonymize

import (
	"bytes"
	"image/gif"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestQuietResponse(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		status int
		ctype  string
		length int
	}{
		{"pixel by Sec-Fetch-Dest", http.Header{"Sec-Fetch-Dest": {"image"}}, 200, "image/gif", len(transparentGIF)},
		{"pixel by Accept", http.Header{"Accept": {"image/avif,image/webp,*/*"}}, 200, "image/gif", len(transparentGIF)},
		{"script", http.Header{"Sec-Fetch-Dest": {"script"}, "Accept": {"*/*"}}, 200, "text/javascript", 0},
		{"script by Accept", http.Header{"Accept": {"application/javascript, */*;q=0.8"}}, 200, "text/javascript", 0},
		{"style", http.Header{"Sec-Fetch-Dest": {"style"}}, 200, "text/css", 0},
		{"iframe", http.Header{"Sec-Fetch-Dest": {"iframe"}}, 200, "text/html; charset=utf-8", 0},
		{"document by Accept", http.Header{"Accept": {"text/html,application/xhtml+xml"}}, 200, "text/html; charset=utf-8", 0},
		{"beacon", http.Header{"Sec-Fetch-Dest": {"empty"}, "Accept": {"image/gif"}}, 204, "", 0},
		{"font", http.Header{"Sec-Fetch-Dest": {"font"}}, 204, "", 0},
		{"no hints", http.Header{}, 204, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := QuietResponse(&http.Request{Header: tt.header})
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.ctype || len(body) != tt.length ||
				resp.ContentLength != int64(tt.length) && tt.status == 200 {
				t.Errorf("got %d %q %d bytes (ContentLength %d), want %d %q %d bytes",
					resp.StatusCode, resp.Header.Get("Content-Type"), len(body), resp.ContentLength, tt.status, tt.ctype, tt.length)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("quiet response may be cached")
			}
		})
	}
}

// TestQuietPixelIsAnImage serves the quiet response for an image through a real
// server and decodes what a client receives.
func TestQuietPixelIsAnImage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := QuietResponse(r)
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/pixel.gif", nil)
	req.Header.Set("Sec-Fetch-Dest", "image")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	img, err := gif.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not a GIF: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("bounds %v", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("pixel alpha %d, want transparent", a)
	}
}
