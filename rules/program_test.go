package rules

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type setMatcher map[string]bool

func (s setMatcher) Match(host string) bool {
	for h := host; ; {
		if s[h] {
			return true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return false
		}
		h = h[i+1:]
	}
}

func compileYAML(t *testing.T, src string) *Program {
	t.Helper()
	var cfg Config
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	lists := func(name string) ([]ListEntry, bool) {
		switch name {
		case "ut1":
			return []ListEntry{
				{Name: "ut1/gambling", Category: "gambling", M: setMatcher{"casino.example": true}},
				{Name: "ut1/adult", Category: "adult", M: setMatcher{"adult.example": true}},
			}, true
		case "social":
			return []ListEntry{{Name: "social", Category: "social", M: setMatcher{"social.example": true}}}, true
		}
		return nil, false
	}
	p, errs := Compile(&cfg, lists)
	if len(errs) > 0 {
		t.Fatalf("compile: %v", errs)
	}
	return p
}

const schoolPolicy = `
lists:
  ut1: {format: ut1, path: x}
  social: {format: domains, path: y}
groups:
  students: {clients: [10.1.0.0/16]}
  staff: {users: [teacher]}
schedules:
  school-hours:
    timezone: Europe/Paris
    windows: [{days: [mon-fri], from: "08:00", to: "15:30"}]
    except: ["2026-12-21..2027-01-03"]
rules:
  - {name: staff-ok, group: [staff], action: allow}
  - {name: always-blocked, list: [ut1], action: block, reason: not for school}
  - {name: social-school-hours, list: [social], group: [students], schedule: school-hours, action: block}
  - {name: tiktok, glob: ["*.tiktok.*"], action: block, category: video}
  - {name: shorts, domain: [youtube.com], path: ["/shorts/*"], action: block}
  - {name: no-ssh, method: [CONNECT], port: [22], action: block}
  - {name: exact, host: [exact.example], action: block}
default: allow
`

func TestEvaluate(t *testing.T) {
	p := compileYAML(t, schoolPolicy)
	paris, _ := time.LoadLocation("Europe/Paris")
	monday10 := time.Date(2026, 11, 23, 10, 0, 0, 0, paris)
	monday16 := time.Date(2026, 11, 23, 16, 0, 0, 0, paris)
	saturday10 := time.Date(2026, 11, 28, 10, 0, 0, 0, paris)
	holiday := time.Date(2026, 12, 22, 10, 0, 0, 0, paris)
	student := netip.MustParseAddr("10.1.2.3")
	other := netip.MustParseAddr("192.0.2.1")
	cases := []struct {
		name     string
		f        Facts
		action   Action
		rule     string
		category string
	}{
		{"allowed by default", Facts{Host: "example.org", Client: student, Time: monday10}, ActionAllow, "default", ""},
		{"listed domain", Facts{Host: "casino.example", Client: other, Time: monday10}, ActionBlock, "always-blocked", "gambling"},
		{"subdomain of listed", Facts{Host: "www.adult.example", Client: other, Time: monday10}, ActionBlock, "always-blocked", "adult"},
		{"label boundary", Facts{Host: "notcasino.example", Client: other, Time: monday10}, ActionAllow, "default", ""},
		{"staff exempt", Facts{Host: "casino.example", User: "teacher", Client: student, Time: monday10}, ActionAllow, "staff-ok", ""},
		{"social in school hours", Facts{Host: "m.social.example", Client: student, Time: monday10}, ActionBlock, "social-school-hours", "social"},
		{"social after school", Facts{Host: "m.social.example", Client: student, Time: monday16}, ActionAllow, "default", ""},
		{"social on saturday", Facts{Host: "social.example", Client: student, Time: saturday10}, ActionAllow, "default", ""},
		{"social on holiday", Facts{Host: "social.example", Client: student, Time: holiday}, ActionAllow, "default", ""},
		{"social, not a student", Facts{Host: "social.example", Client: other, Time: monday10}, ActionAllow, "default", ""},
		{"social, student by auth group", Facts{Host: "social.example", Client: other, Groups: []string{"students"}, Time: monday10}, ActionBlock, "social-school-hours", "social"},
		{"glob", Facts{Host: "www.tiktok.com", Time: monday10}, ActionBlock, "tiktok", "video"},
		{"glob by SNI", Facts{Host: "203.0.113.9", SNI: "v16.tiktok.co.uk", Time: monday10}, ActionBlock, "tiktok", "video"},
		{"path rule", Facts{Host: "www.youtube.com", Path: "/shorts/abc", Time: monday10}, ActionBlock, "shorts", ""},
		{"path rule, encoded", Facts{Host: "www.youtube.com", Path: "/%73horts/abc", Time: monday10}, ActionBlock, "shorts", ""},
		{"path rule, doubled slash", Facts{Host: "www.youtube.com", Path: "//shorts//abc", Time: monday10}, ActionBlock, "shorts", ""},
		{"path rule other path", Facts{Host: "www.youtube.com", Path: "/watch", Time: monday10}, ActionAllow, "default", ""},
		{"path rule on CONNECT", Facts{Host: "www.youtube.com", Method: "CONNECT", Port: 443, Time: monday10}, ActionAllow, "default", ""},
		{"connect 22", Facts{Host: "example.org", Method: "CONNECT", Port: 22, Time: monday10}, ActionBlock, "no-ssh", ""},
		{"exact only", Facts{Host: "sub.exact.example", Time: monday10}, ActionAllow, "default", ""},
		{"exact", Facts{Host: "exact.example", Time: monday10}, ActionBlock, "exact", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := p.Evaluate(&c.f)
			if v.Action != c.action || v.Rule != c.rule || v.Category != c.category {
				t.Fatalf("got %v/%s/%q, want %v/%s/%q", v.Action, v.Rule, v.Category, c.action, c.rule, c.category)
			}
		})
	}
}

func TestScheduleDST(t *testing.T) {
	s, errs := compileSchedule(&ScheduleConfig{Timezone: "Europe/Paris", Windows: []*WindowConfig{{Days: []string{"sun"}, From: "02:00", To: "04:00"}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// 2026-03-29 is the spring-forward Sunday in Paris: 02:00-03:00 does not exist.
	if !s.Active(time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)) { // 03:30 CEST
		t.Fatal("03:30 local should be inside 02:00-04:00")
	}
	if s.Active(time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)) { // 01:30 CET
		t.Fatal("01:30 local should be outside")
	}
}

func BenchmarkEvaluate(b *testing.B) {
	var cfg Config
	if err := yaml.Unmarshal([]byte(schoolPolicy), &cfg); err != nil {
		b.Fatal(err)
	}
	p, errs := Compile(&cfg, func(string) ([]ListEntry, bool) {
		return []ListEntry{{Category: "x", M: setMatcher{"casino.example": true}}}, true
	})
	if errs != nil {
		b.Fatal(errs)
	}
	f := &Facts{Host: "www.example.org", Client: netip.MustParseAddr("10.1.2.3"), Path: "/index.html", Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(f)
	}
}

func TestExplainAgreesWithEvaluate(t *testing.T) {
	p := compileYAML(t, schoolPolicy)
	f := &Facts{Host: "www.youtube.com", Path: "/shorts/x", Client: netip.MustParseAddr("10.1.0.1"), Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	v, steps := p.Explain(f)
	if v != p.Evaluate(f) {
		t.Fatalf("explain %+v != evaluate %+v", v, p.Evaluate(f))
	}
	last := steps[len(steps)-1]
	if !last.Matched || last.Rule != "shorts" {
		t.Fatalf("last step = %+v", last)
	}
	if steps[0].Failed != "group" || steps[1].Failed != "destination" {
		t.Fatalf("steps = %+v", steps)
	}
}

// TestGroupOfAuthFile: a rule may name a group that groups: does not declare (one
// of the auth group file, checked by the config package); its members are the
// requests whose Facts.Groups name it. A group declared in both places matches by
// address, by listed user or by Facts.Groups.
func TestGroupOfAuthFile(t *testing.T) {
	p := compileYAML(t, `
groups:
  staff: {clients: ["10.2.0.0/16"], users: [carol]}
rules:
  - {name: teachers-grades, group: [teachers], host: [grades.example], action: block}
  - {name: staff-games, group: [staff], host: [games.example], action: block}
`)
	lan := netip.MustParseAddr("10.1.0.5")
	staffAddr := netip.MustParseAddr("10.2.0.5")
	cases := []struct {
		name string
		f    Facts
		rule string
	}{
		{"teacher by file", Facts{Host: "grades.example", Client: lan, User: "alice", Groups: []string{"teachers"}}, "teachers-grades"},
		{"not a teacher", Facts{Host: "grades.example", Client: lan, User: "bob", Groups: []string{"students"}}, "default"},
		{"teachers by address is nothing", Facts{Host: "grades.example", Client: staffAddr}, "default"},
		{"staff by address", Facts{Host: "games.example", Client: staffAddr, User: "bob"}, "staff-games"},
		{"staff by file", Facts{Host: "games.example", Client: lan, User: "alice", Groups: []string{"staff"}}, "staff-games"},
		{"staff by policy user", Facts{Host: "games.example", Client: lan, User: "carol"}, "staff-games"},
		{"not staff", Facts{Host: "games.example", Client: lan, User: "bob", Groups: []string{"students"}}, "default"},
	}
	for _, c := range cases {
		if v := p.Evaluate(&c.f); v.Rule != c.rule {
			t.Errorf("%s: rule %q, want %q", c.name, v.Rule, c.rule)
		}
	}
	got := p.GroupsOf(&Facts{Client: staffAddr, Groups: []string{"teachers"}})
	if strings.Join(got, ",") != "staff,teachers" {
		t.Errorf("GroupsOf = %q, want staff and teachers", got)
	}
}
