package forward

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/anonymize"
)

// TestEliteRemovesEveryClientAddressField: through the forward door, the elite profile leaves none of the fields in
// anonymize.ClientAddressFields, nor the spellings its patterns cover, for the
// origin to read; an unrelated field passes. On bc21481 CF-Connecting-IPv6,
// X-Azure-ClientIP, WL-Proxy-Client-IP and others arrived.
func TestEliteRemovesEveryClientAddressField(t *testing.T) {
	names := anonymize.ClientAddressFields()
	names = append(names, "True-Client-IP", "X-Cluster-Client-IP", "X-Originating-IP", "CF-Connecting-IP",
		"Fastly-Client-IP", "X-Client-IP", "CF-Connecting-IPv6", "X-Azure-ClientIP", "X-Azure-SocketIP",
		"WL-Proxy-Client-IP", "X-AppEngine-User-IP", "X-Real-Client-IP", "Cdn-Src-Ip", "X-Forwarded-For-Original",
		"X_Real_IP", "Z-Forwarded-For", "X-ProxyUser-IP", "X-Original-Client-Ip", "Akamai-Client-Ip")
	if len(anonymize.ClientAddressFields()) < 30 {
		t.Fatalf("ClientAddressFields holds %d names", len(anonymize.ClientAddressFields()))
	}
	{
		o := newRecordingOrigin(t)
		elite := anonymize.Elite()
		tp := startProxy(t, Options{Config: &Config{Profile: "elite"}, Anonymizer: func(string) Anonymizer { return elite }})
		var raw strings.Builder
		raw.WriteString("GET " + o.URL + "/ip HTTP/1.1\r\nHost: " + o.Listener.Addr().String() + "\r\n")
		for _, n := range names {
			raw.WriteString(n + ": 10.9.8.7\r\n")
		}
		raw.WriteString("X-Unrelated: kept\r\n\r\n")
		resp, _, _ := tp.rawRequest(t, raw.String())
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
		h := o.seen()
		for k, v := range h {
			if strings.Contains(strings.Join(v, ","), "10.9.8.7") {
				t.Errorf("the origin received %s: %q", k, v)
			}
		}
		if h.Get("X-Unrelated") != "kept" {
			t.Errorf("an unrelated field was removed: %v", h)
		}
	}
}
