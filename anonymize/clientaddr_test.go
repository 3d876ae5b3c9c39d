package anonymize

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestClientAddressFieldsDocumented: the list is sorted, every name on it is
// removed (in any case, with underscores), docs/threats.md names each one,
// and ordinary fields are not caught by the patterns.
func TestClientAddressFieldsDocumented(t *testing.T) {
	names := ClientAddressFields()
	if !slices.IsSorted(names) {
		t.Errorf("ClientAddressFields is not sorted: %v", names)
	}
	doc, err := os.ReadFile("../docs/threats.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !identifying(n) || !identifying(strings.ToLower(n)) || !identifying(strings.ReplaceAll(strings.ToUpper(n), "-", "_")) {
			t.Errorf("%s is listed but not removed in every spelling", n)
		}
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("docs/threats.md does not name %s", n)
		}
	}
	for _, n := range []string{"Accept", "User-Agent", "Referer", "Cookie", "Sec-Fetch-Site", "Sec-Ch-Ua-Platform",
		"Content-Type", "X-Requested-With", "Origin", "If-None-Match", "Authorization", "Ip", "X-Ip-Hash-Test"} {
		if identifying(n) {
			t.Errorf("%s is removed as a client-address field", n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { identifying("X_Forwarded_For"); identifying("Accept-Language") }); n != 0 {
		t.Errorf("identifying allocates %v times", n)
	}
}

// TestAnonymousLog: anonymous_log compiles into the profile; the built-in
// privacy profile sets it and the levels do not.
func TestAnonymousLog(t *testing.T) {
	if !Privacy().AnonymousLog() || Elite().AnonymousLog() || Transparent().AnonymousLog() {
		t.Fatal("privacy must set anonymous_log, the bare levels must not")
	}
	p, err := Compile("quiet-log", ProfileConfig{AnonymousLog: true}, nil)
	if err != nil || !p.AnonymousLog() {
		t.Fatalf("compiled: %v %v", p, err)
	}
}
