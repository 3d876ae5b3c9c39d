package rules

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/gobwas/glob"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config/field"
)

// ListEntry is one compiled list a rule can refer to, with the category it reports.
// When M also implements URLMatcher and the request has a path, URL entries count too.
type ListEntry struct {
	Name     string
	Category string
	M        filter.Matcher
}

// URLMatcher is implemented by lists that also hold host/path-prefix entries (UT1 urls).
type URLMatcher interface {
	MatchURL(host, path string) bool
}

// ListSource resolves a list name used in a rule to the compiled lists behind it (a
// UT1 folder name stands for all its categories). ok is false for unknown names.
type ListSource func(name string) (entries []ListEntry, ok bool)

// Program is a compiled, immutable policy: safe for concurrent use, swapped whole on
// reload.
type Program struct {
	rules    []*rule
	def      Verdict
	groups   map[string]*group
	schedule map[string]*Schedule
}

type group struct {
	clients []netip.Prefix
	users   map[string]bool
}

type rule struct {
	name string
	// destination alternatives
	hosts   map[string]bool
	domains Domains
	globs   []*glob.Pattern
	lists   []ListEntry
	hasDest bool

	paths       []*glob.Pattern
	methods     []string
	ports       []uint16
	schemes     []string
	clients     []netip.Prefix
	groups      []*group
	groupNames  []string
	users       map[string]bool
	doors       uint8
	schedule    *Schedule
	outside     bool
	scheduleArg string

	verdict Verdict
}

// Compile checks cfg and builds a Program. lists resolves the list names rules use
// (nil when the policy uses none). All problems are returned together, with paths
// relative to the policy file's root.
func Compile(cfg *Config, lists ListSource) (*Program, []field.Error) {
	errs := cfg.Validate()
	p := &Program{groups: map[string]*group{}, schedule: map[string]*Schedule{}}
	for name, g := range cfg.Groups {
		cg := &group{users: map[string]bool{}}
		if g != nil {
			for _, c := range g.Clients {
				if pfx, err := parsePrefix(c); err == nil {
					cg.clients = append(cg.clients, pfx)
				}
			}
			for _, u := range g.Users {
				cg.users[u] = true
			}
		}
		p.groups[name] = cg
	}
	for name, s := range cfg.Schedules {
		if s == nil {
			continue
		}
		cs, _ := compileSchedule(s) // problems already reported by Validate
		p.schedule[name] = cs
	}
	def := ActionAllow
	if cfg.Default == "block" {
		def = ActionBlock
	}
	p.def = Verdict{Action: def, Rule: "default"}
	for i, rc := range cfg.Rules {
		if rc == nil {
			continue
		}
		r, rerrs := p.compileRule(rc, lists)
		errs = append(errs, field.Prefix(fmt.Sprintf("rules[%d]", i), rerrs)...)
		p.rules = append(p.rules, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func (p *Program) compileRule(rc *RuleConfig, lists ListSource) (*rule, []field.Error) {
	var errs []field.Error
	r := &rule{name: rc.Name}
	for _, h := range rc.Host {
		if r.hosts == nil {
			r.hosts = map[string]bool{}
		}
		r.hosts[normalizeName(h)] = true
	}
	r.domains = NewDomains(rc.Domain)
	for _, g := range rc.Glob {
		if cg, err := glob.Compile(strings.ToLower(g)); err == nil {
			r.globs = append(r.globs, cg)
		}
	}
	for i, name := range rc.List {
		if lists == nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("list[%d]", i), "unknown list %q", name))
			continue
		}
		entries, ok := lists(name)
		if !ok {
			errs = append(errs, field.Errorf(fmt.Sprintf("list[%d]", i), "unknown list %q", name))
			continue
		}
		r.lists = append(r.lists, entries...)
	}
	r.hasDest = len(rc.Host)+len(rc.Domain)+len(rc.Glob)+len(rc.List) > 0
	for _, pg := range rc.Path {
		if cg, err := glob.Compile(pg); err == nil {
			r.paths = append(r.paths, cg)
		}
	}
	for _, m := range rc.Method {
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	for _, port := range rc.Port {
		r.ports = append(r.ports, uint16(port))
	}
	for _, s := range rc.Scheme {
		r.schemes = append(r.schemes, strings.ToLower(s))
	}
	for _, c := range rc.Client {
		if pfx, err := parsePrefix(c); err == nil {
			r.clients = append(r.clients, pfx)
		}
	}
	for _, g := range rc.Group {
		r.groupNames = append(r.groupNames, g)
		if cg, ok := p.groups[g]; ok {
			r.groups = append(r.groups, cg)
		} else {
			r.groups = append(r.groups, &group{}) // a group of the auth group file only: Facts.Groups says who is in it
		}
	}
	for _, u := range rc.User {
		if r.users == nil {
			r.users = map[string]bool{}
		}
		r.users[u] = true
	}
	for _, d := range rc.Door {
		switch d {
		case "forward":
			r.doors |= 1 << DoorForward
		case "reverse":
			r.doors |= 1 << DoorReverse
		case "dns":
			r.doors |= 1 << DoorDNS
		}
	}
	if rc.Schedule != "" {
		name := strings.TrimPrefix(rc.Schedule, "!")
		r.outside = name != rc.Schedule
		r.scheduleArg = name
		r.schedule = p.schedule[name]
	}
	action, _ := ParseAction(rc.Action)
	r.verdict = Verdict{Action: action, Rule: rc.Name, Category: rc.Category, Reason: rc.Reason,
		Profile: rc.Profile, Pool: rc.Pool, Cache: rc.Cache, Quiet: rc.Quiet}
	return r, errs
}

// Evaluate returns the verdict of the first rule that matches f, or the default.
// It never fails: a rule whose condition cannot be decided does not match.
func (p *Program) Evaluate(f *Facts) Verdict {
	for _, r := range p.rules {
		if category, ok := r.match(p, f); ok {
			v := r.verdict
			if v.Category == "" {
				v.Category = category
			}
			return v
		}
	}
	return p.def
}

// Default returns the verdict used when no rule matches.
func (p *Program) Default() Verdict { return p.def }

// InGroup reports whether a request with facts f belongs to the named group (by client
// address, user name, or a group the authenticator reported).
func (p *Program) InGroup(name string, f *Facts) bool {
	if slices.Contains(f.Groups, name) {
		return true
	}
	g, ok := p.groups[name]
	return ok && g.has(f)
}

func (g *group) has(f *Facts) bool {
	if f.User != "" && g.users[f.User] {
		return true
	}
	return containsAddr(g.clients, f.Client)
}

// match reports whether r matches f, and the category of the list that matched.
func (r *rule) match(p *Program, f *Facts) (string, bool) {
	_, cat, ok := r.check(p, f)
	return cat, ok
}

// check evaluates the rule's conditions in a fixed order; when one fails it names it.
func (r *rule) check(p *Program, f *Facts) (failed, category string, ok bool) {
	if r.doors != 0 && r.doors&(1<<f.Door) == 0 {
		return "door", "", false
	}
	if len(r.methods) > 0 && !slices.Contains(r.methods, f.Method) {
		return "method", "", false
	}
	if len(r.schemes) > 0 && !slices.Contains(r.schemes, f.Scheme) {
		return "scheme", "", false
	}
	if len(r.ports) > 0 && !slices.Contains(r.ports, f.Port) {
		return "port", "", false
	}
	if len(r.clients) > 0 && !containsAddr(r.clients, f.Client) {
		return "client", "", false
	}
	if r.users != nil && !r.users[f.User] {
		return "user", "", false
	}
	if len(r.groups) > 0 {
		in := false
		for i, g := range r.groups {
			if slices.Contains(f.Groups, r.groupNames[i]) || g.has(f) {
				in = true
				break
			}
		}
		if !in {
			return "group", "", false
		}
	}
	if r.scheduleArg != "" {
		active := r.schedule != nil && r.schedule.Active(f.Time)
		if active == r.outside {
			return "schedule", "", false
		}
	}
	if len(r.paths) > 0 {
		if f.Path == "" || !matchAnyGlob(r.paths, f.Path) && !matchAnyGlob(r.paths, canonicalPath(f.Path)) {
			return "path", "", false
		}
	}
	if r.hasDest {
		cat, ok := r.matchDest(f.Host, f.Path)
		if !ok && f.SNI != "" && f.SNI != f.Host {
			cat, ok = r.matchDest(f.SNI, "")
		}
		if !ok {
			return "destination", "", false
		}
		return "", cat, true
	}
	return "", "", true
}

func (r *rule) matchDest(host, path string) (string, bool) {
	if host == "" {
		return "", false
	}
	if r.hosts[host] {
		return "", true
	}
	if _, ok := r.domains.Match(host); ok {
		return "", true
	}
	if matchAnyGlob(r.globs, host) {
		return "", true
	}
	for _, l := range r.lists {
		if path != "" {
			if um, ok := l.M.(URLMatcher); ok {
				if um.MatchURL(host, path) {
					return l.Category, true
				}
				continue
			}
		}
		if l.M.Match(host) {
			return l.Category, true
		}
	}
	return "", false
}

func matchAnyGlob(gs []*glob.Pattern, s string) bool {
	for _, g := range gs {
		if g.Match(s) {
			return true
		}
	}
	return false
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func normalizeName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// GroupsOf returns the names of the policy's groups that a request with facts f
// belongs to (by client address or user), plus the groups the authenticator reported.
func (p *Program) GroupsOf(f *Facts) []string {
	out := append([]string(nil), f.Groups...)
	for name, g := range p.groups {
		if g.has(f) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// canonicalPath is the path as an origin will read it: percent-decoded, with runs of
// slashes merged, so that /%73horts/x and //shorts/x meet a rule on /shorts/*. Path
// rules match either spelling. It returns p itself when there is nothing to undo.
func canonicalPath(p string) string {
	if !strings.ContainsAny(p, "%") && !strings.Contains(p, "//") {
		return p
	}
	if d, err := url.PathUnescape(p); err == nil {
		p = d
	}
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}
