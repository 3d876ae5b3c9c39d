package anonymize

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/internal/config/field"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   ProfileConfig
		paths []string // the paths of the expected errors, in order
	}{
		{"zero is valid", ProfileConfig{}, nil},
		{"privacy is valid", PrivacyConfig(), nil},
		{"every enum", ProfileConfig{Level: "distorting", Referrer: "forge", UserAgent: "random", ClientHints: "fake", Cookies: "eat"},
			[]string{"level", "referrer", "user_agent", "client_hints", "cookies"}},
		{"header values", ProfileConfig{UserAgentString: "bad\nagent", AcceptLanguage: "en-US,en;q=2,,;"},
			[]string{"user_agent_string", "accept_language"}},
		{"header patterns", ProfileConfig{RemoveHeaders: []string{"X-Ok", "", "X-Ok-*", "Bad Name", "X-[ab]"}},
			[]string{"remove_headers[1]", "remove_headers[3]", "remove_headers[4]"}},
		{"set headers", ProfileConfig{SetHeaders: map[string]string{"X-Fine": "1", "Host": "evil", "Bad Name": "1", "X-Crlf": "a\r\nb", "x-fine": "2"}},
			[]string{"set_headers.Bad Name", "set_headers.Host", "set_headers.X-Crlf", "set_headers.x-fine"}},
		{"strip params", ProfileConfig{StripParams: []string{"utm_*", "", "bad[glob"}},
			[]string{"strip_params[1]", "strip_params[2]"}},
		{"list names", ProfileConfig{Trackers: []string{""}, BlockSetCookieFrom: []string{"x", ""}},
			[]string{"block_set_cookie_from[1]", "trackers[0]"}},
		{"hide origin", ProfileConfig{HideOrigin: &HideOriginConfig{Remove: []string{"Server", "X Y"}, Server: " padded"}},
			[]string{"hide_origin.remove[1]", "hide_origin.server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			var paths []string
			for _, e := range errs {
				paths = append(paths, e.Path)
				if e.Msg == "" {
					t.Errorf("%s: empty message", e.Path)
				}
			}
			// set_headers is a map, so its errors come in any order.
			slices.Sort(paths)
			want := slices.Sorted(slices.Values(tt.paths))
			if !reflect.DeepEqual(paths, want) {
				t.Errorf("paths %q, want %q (errors: %v)", paths, want, errs)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile("p", ProfileConfig{Level: "x", Trackers: []string{"trackers", "nope"}, BlockSetCookieFrom: []string{"gone"}}, testLists)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConfigError", err)
	}
	want := []field.Error{
		{Path: "level", Msg: `unknown level "x" (want transparent, anonymous or elite)`},
		{Path: "block_set_cookie_from[0]", Msg: `unknown list "gone"`},
		{Path: "trackers[1]", Msg: `unknown list "nope"`},
	}
	if ce.Profile != "p" || !reflect.DeepEqual(ce.Errs, want) {
		t.Errorf("got %+v", ce)
	}
	if !strings.Contains(err.Error(), `trackers[1]: unknown list "nope"`) {
		t.Errorf("message %q", err)
	}
	if _, err := Compile("p", ProfileConfig{Trackers: []string{"trackers"}}, nil); err == nil {
		t.Error("nil lists accepted a list name")
	}
}

func TestTrackers(t *testing.T) {
	p := mustCompile(t, ProfileConfig{Trackers: []string{"empty", "trackers"}})
	if got := p.TrackerLists(); !reflect.DeepEqual(got, []string{"empty", "trackers"}) {
		t.Errorf("TrackerLists = %q", got)
	}
	p.TrackerLists()[0] = "mutated"
	if p.TrackerLists()[0] != "empty" {
		t.Error("TrackerLists exposes the profile's slice")
	}
	for host, want := range map[string]bool{"tracker.example": true, "px.ads.example": true, "news.example": false} {
		if got := p.Tracker(host); got != want {
			t.Errorf("Tracker(%q) = %v", host, got)
		}
	}
	if Elite().Tracker("tracker.example") {
		t.Error("elite blocks trackers without lists")
	}
}

func decodeStrict(t *testing.T, src []byte) ProfileConfig {
	t.Helper()
	var cfg ProfileConfig
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPrivacyYAML keeps testdata/privacy.yaml (the section the lead puts in
// policies/privacy.yaml) equal to PrivacyConfig.
func TestPrivacyYAML(t *testing.T) {
	src, err := os.ReadFile("testdata/privacy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeStrict(t, src); !reflect.DeepEqual(got, PrivacyConfig()) {
		t.Errorf("testdata/privacy.yaml decodes to\n%+v\nPrivacyConfig is\n%+v", got, PrivacyConfig())
	}
}

func TestPrivacyCompiles(t *testing.T) {
	if p := Privacy(); p.Name() != "privacy" || p.Level() != LevelElite {
		t.Errorf("Privacy() = %q %v", p.Name(), p.Level())
	}
}

// TestOmittedVersusEmptyList proves the documented defaults: an omitted list takes
// the default, an explicit [] means none.
func TestOmittedVersusEmptyList(t *testing.T) {
	omitted := decodeStrict(t, []byte("level: elite\n"))
	empty := decodeStrict(t, []byte("strip_params: []\nremove_headers: []\nhide_origin: {remove: []}\n"))
	if omitted.StripParams != nil || empty.StripParams == nil || len(empty.StripParams) != 0 {
		t.Fatalf("YAML decoding lost the difference: %#v / %#v", omitted.StripParams, empty.StripParams)
	}
	withDefaults := mustCompile(t, omitted)
	none := mustCompile(t, empty)
	if !withDefaults.stripParams.match("utm_source=x") || !withDefaults.removeHeaders.match("X-Client-Data") {
		t.Error("omitted lists did not take their defaults")
	}
	if !none.stripParams.empty() || !none.removeHeaders.empty() || !none.hideOrigin.empty() {
		t.Error("explicit [] did not mean none")
	}
	hidden := mustCompile(t, decodeStrict(t, []byte("hide_origin: {}\n")))
	if !hidden.hideOrigin.match("Server") || !hidden.hideOrigin.match("x-powered-by") {
		t.Error("hide_origin: {} did not take the default list")
	}
}

func TestModeNames(t *testing.T) {
	for m := modeKeep; m <= modeThirdParty; m++ {
		got, err := parseMode(m.String(), 0, m)
		if err != nil || got != m {
			t.Errorf("parseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := parseReferrer("generic"); err == nil || err.Error() != `unknown value "generic" (want keep, strip, same-origin, origin)` {
		t.Errorf("referrer accepted another setting's mode: %v", err)
	}
	if m, _ := parseClientHints("", modeGeneric); m != modeConsistent {
		t.Errorf("client hints default with a changed agent = %v", m)
	}
}
