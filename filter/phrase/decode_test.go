package phrase

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"testing"
)

// TestDecodeBounded: a gzip body decoding past the limit fails with
// DecodedTooLargeError (a decompression bomb is cut, not streamed), one of
// exactly the limit decodes whole, and an unknown or stacked coding is refused.
func TestDecodeBounded(t *testing.T) {
	gz := func(n int) io.ReadCloser {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(bytes.Repeat([]byte("a"), n))
		_ = zw.Close()
		return io.NopCloser(&buf)
	}
	r, err := Decode("gzip", gz(1000), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || len(b) != 1000 {
		t.Fatalf("exactly the limit: %d bytes, %v", len(b), err)
	}
	r, _ = Decode("gzip", gz(1<<20), 1000)
	b, err := io.ReadAll(r)
	var big *DecodedTooLargeError
	if !errors.As(err, &big) || len(b) != 1000 {
		t.Fatalf("over the limit: %d bytes, %v", len(b), err)
	}
	for _, enc := range []string{"br", "zstd", "gzip, gzip", "compress"} {
		var bad *UnreadableEncodingError
		if _, err := Decode(enc, gz(10), 0); !errors.As(err, &bad) {
			t.Fatalf("%q: %v", enc, err)
		}
	}
	h := http.Header{"Content-Encoding": {"gzip", "Identity, GZIP"}}
	if got := Encoding(h); got != "gzip, gzip" {
		t.Fatalf("Encoding = %q", got)
	}
}
