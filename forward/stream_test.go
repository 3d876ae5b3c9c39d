package forward

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// patternReader generates n bytes on the fly (no backing buffer).
type patternReader struct{ left, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7)
	}
	p.off += int64(len(b))
	p.left -= int64(len(b))
	return len(b), nil
}

func TestDownload100MBDoesNotGrowMemory(t *testing.T) {
	size := int64(100 << 20)
	if testing.Short() {
		size = 20 << 20
	}
	sizes := map[string]int64{"1": 20 << 20, "0": size} // Content-Length path, then the flushed chunked path
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("len") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(20<<20))
		}
		n := sizes[r.URL.Query().Get("len")]
		buf := make([]byte, 32<<10)
		_, _ = io.CopyBuffer(w, &patternReader{left: n}, buf)
	}))
	defer origin.Close()
	tp := startProxy(t, Options{})
	c := tp.client(t)
	for _, mode := range []string{"1", "0"} {
		wantSum := sha256.New()
		_, _ = io.CopyBuffer(wantSum, &patternReader{left: sizes[mode]}, make([]byte, 32<<10))
		want := wantSum.Sum(nil)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp, err := c.Get(origin.URL + "/big?len=" + mode)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, resp.Body, make([]byte, 32<<10))
		resp.Body.Close()
		runtime.ReadMemStats(&after)
		if err != nil || n != sizes[mode] || string(h.Sum(nil)) != string(want) {
			t.Fatalf("len=%s: %d bytes, err %v, sum ok %v", mode, n, err, string(h.Sum(nil)) == string(want))
		}
		// Everything here (origin, proxy, client) is in this process: the whole
		// relay of 100 MB must allocate and hold only a few MB.
		alloc := after.TotalAlloc - before.TotalAlloc
		inuse := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("len=%s: TotalAlloc +%d KiB, HeapInuse %+d KiB", mode, alloc>>10, inuse>>10)
		if alloc > 8<<20 || inuse > 8<<20 {
			t.Errorf("len=%s: memory grew: TotalAlloc +%d KiB, HeapInuse %+d KiB", mode, alloc>>10, inuse>>10)
		}
		if e := tp.log.next(t); e.BytesOut != sizes[mode] {
			t.Errorf("logged BytesOut %d", e.BytesOut)
		}
	}
}

func TestBodiesStreamBothWays(t *testing.T) {
	gotFirst := make(chan struct{})
	sentFirst := make(chan struct{})
	clientGotFirst := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil || string(buf) != "first" {
			t.Errorf("origin read %q %v", buf, err)
			return
		}
		close(gotFirst) // the proxy relayed the start of the upload before its end
		rest, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "head|")
		w.(http.Flusher).Flush()
		close(sentFirst)
		select { // the client must see the start of the response before its end
		case <-clientGotFirst:
		case <-time.After(10 * time.Second):
			t.Error("client never received the first response chunk")
		}
		_, _ = w.Write(rest)
	}))
	defer origin.Close()
	tp := startProxy(t, Options{})
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "first")
		select {
		case <-gotFirst:
		case <-time.After(10 * time.Second):
			_ = pw.CloseWithError(io.ErrUnexpectedEOF)
			return
		}
		_, _ = io.WriteString(pw, "-second")
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", origin.URL+"/up", pr)
	resp, err := tp.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != "head|" {
		t.Fatalf("first chunk %q %v", head, err)
	}
	close(clientGotFirst)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "-second" {
		t.Fatalf("rest %q %v", rest, err)
	}
	<-sentFirst
}
