package anonymize

import (
	"errors"
	"reflect"
	"testing"
)

func TestCompileProfiles(t *testing.T) {
	ps, err := CompileProfiles(map[string]ProfileConfig{
		"school":  {Level: "anonymous", Trackers: []string{"trackers"}},
		"privacy": {Referrer: "strip", Trackers: []string{"trackers", "empty"}},
	}, testLists)
	if err != nil {
		t.Fatal(err)
	}
	if got := ps.Names(); !reflect.DeepEqual(got, []string{"anonymous", "elite", "privacy", "school", "transparent"}) {
		t.Errorf("Names = %q", got)
	}
	if p := ps.Get(""); p == nil || p.Name() != "elite" {
		t.Errorf(`Get("") = %v, want elite`, p)
	}
	if p := ps.Get("school"); p == nil || p.Level() != LevelAnonymous {
		t.Errorf("Get(school) = %v", p)
	}
	if p := ps.Get("privacy"); p == nil || p.referrer != modeStrip {
		t.Error("the policy's privacy profile did not replace the built-in")
	}
	if ps.Get("nope") != nil {
		t.Error("unknown profile is not nil")
	}
	if got := ps.TrackerLists(); !reflect.DeepEqual(got, []string{"empty", "trackers"}) {
		t.Errorf("TrackerLists = %q", got)
	}
}

func TestCompileProfilesErrors(t *testing.T) {
	_, err := CompileProfiles(map[string]ProfileConfig{
		"b": {Cookies: "eat"},
		"a": {Trackers: []string{"missing"}},
		"":  {},
	}, testLists)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *ConfigError", err)
	}
	var paths []string
	for _, e := range ce.Errs {
		paths = append(paths, e.Path)
	}
	if want := []string{"", "a.trackers[0]", "b.cookies"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %q, want %q (%v)", paths, want, err)
	}
}
