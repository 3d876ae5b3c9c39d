package pac

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// ContentType is the media type of PAC files.
const ContentType = "application/x-ns-proxy-autoconfig"

// Handler serves body at /proxy.pac and /wpad.dat (GET and HEAD, with an ETag
// so browsers can revalidate, and Cache-Control max-age=300), 404 for any other
// path and 405 for other methods. Mount it on the proxy's non-proxy handler
// (relative-URL requests) and on the admin listener.
func Handler(body []byte) http.Handler {
	body = bytes.Clone(body)
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/proxy.pac" && r.URL.Path != "/wpad.dat" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ContentType)
		h.Set("Cache-Control", "max-age=300")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}
