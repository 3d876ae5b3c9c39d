package reverse

import (
	"io"
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/internal/pool"
)

// TestKnownLengthBodyFlushed: a response with a Content-Length whose origin
// sends part of the body and then waits still reaches the client in part (the
// door flushes within flushInterval; it does not hold bytes until the end).
func TestKnownLengthBodyFlushed(t *testing.T) {
	release := make(chan struct{})
	o := newTestOrigin(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "first")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "-rest")
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "app"}}}, pools, Options{})
	resp, err := client(t, d.plain, nil, false).Get("http://app.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first part %q %v", buf, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "-rest" || resp.ContentLength != 10 {
		t.Errorf("rest %q %v, length %d", rest, err, resp.ContentLength)
	}
}
