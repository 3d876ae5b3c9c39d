package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gobwas/glob"

	"github.com/portcullis/portcullis/internal/config/field"
)

// ListFormats are the list formats a policy may name.
var listFormats = []string{"domains", "hosts", "adblock", "ut1"}

// Validate checks the rules part of a policy on its own: names, actions, CIDRs,
// globs, schedules, and that rules refer to lists and schedules that exist.
// File existence and references to other sections are checked by the config package,
// and so are the group names rules use: a group may be one of Groups or a group of
// the forward proxy's auth group file, which only the config package reads.
func (c *Config) Validate() []field.Error {
	var errs []field.Error
	bad := func(path, format string, args ...any) {
		errs = append(errs, field.Errorf(path, format, args...))
	}
	switch c.Default {
	case "", "allow", "block":
	default:
		bad("default", "unknown action %q (use allow or block)", c.Default)
	}
	for name, l := range c.Lists {
		p := "lists." + name
		if l == nil {
			bad(p, "empty list definition (give format and path)")
			continue
		}
		if strings.Contains(name, "/") {
			bad(p, "a list name cannot contain '/' (it separates a UT1 folder from its categories)")
		}
		if !contains(listFormats, l.Format) {
			bad(p+".format", "unknown list format %q (use one of %s)", l.Format, strings.Join(listFormats, ", "))
		}
		if l.Path == "" {
			bad(p+".path", "a list needs a path")
		}
		if len(l.Categories) > 0 && l.Format != "ut1" {
			bad(p+".categories", "categories apply only to format ut1")
		}
	}
	for name, g := range c.Groups {
		if g == nil {
			continue
		}
		for i, cl := range g.Clients {
			if _, err := parsePrefix(cl); err != nil {
				bad(fmt.Sprintf("groups.%s.clients[%d]", name, i), "invalid CIDR or address %q", cl)
			}
		}
	}
	for name, s := range c.Schedules {
		if s == nil {
			bad("schedules."+name, "empty schedule (give windows)")
			continue
		}
		_, serrs := compileSchedule(s)
		errs = append(errs, field.Prefix("schedules."+name, serrs)...)
	}
	seen := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if r == nil {
			bad(p, "empty rule")
			continue
		}
		switch prev, dup := seen[r.Name]; {
		case r.Name == "":
			bad(p+".name", "every rule needs a name (it is shown on block pages and in logs)")
		case r.Name == "default":
			bad(p+".name", "the name \"default\" is reserved for the default action")
		case dup:
			bad(p+".name", "duplicate rule name %q (first used by rules[%d])", r.Name, prev)
		default:
			seen[r.Name] = i
		}
		if r.Action == "" {
			bad(p+".action", "missing action (use allow, block, inspect or tunnel)")
		} else if _, ok := ParseAction(r.Action); !ok {
			bad(p+".action", "unknown action %q (use allow, block, inspect or tunnel)", r.Action)
		}
		for j, h := range r.Host {
			if !validName(normalizeName(h)) {
				bad(fmt.Sprintf("%s.host[%d]", p, j), "invalid host name %q", h)
			}
		}
		for j, d := range r.Domain {
			if !ValidDomain(d) {
				bad(fmt.Sprintf("%s.domain[%d]", p, j), "invalid domain %q", d)
			}
		}
		for j, g := range r.Glob {
			if _, err := glob.Compile(strings.ToLower(g)); err != nil || g == "" {
				bad(fmt.Sprintf("%s.glob[%d]", p, j), "invalid glob %q: %v", g, errOrEmpty(err))
			}
		}
		for j, g := range r.Path {
			if _, err := glob.Compile(g); err != nil || !strings.HasPrefix(g, "/") && !strings.HasPrefix(g, "*") {
				bad(fmt.Sprintf("%s.path[%d]", p, j), "invalid path glob %q: %v", g, errOrPath(err))
			}
		}
		for j, name := range r.List {
			base, cat, hasCat := strings.Cut(name, "/")
			l, ok := c.Lists[base]
			switch {
			case !ok:
				bad(fmt.Sprintf("%s.list[%d]", p, j), "unknown list %q%s", name, known(c.Lists))
			case hasCat && (l == nil || l.Format != "ut1"):
				bad(fmt.Sprintf("%s.list[%d]", p, j), "%q: only ut1 lists have categories", name)
			case hasCat && len(l.Categories) > 0 && !contains(l.Categories, cat):
				bad(fmt.Sprintf("%s.list[%d]", p, j), "list %q does not load category %q (add it to lists.%s.categories)", base, cat, base)
			}
		}
		for j, m := range r.Method {
			if m == "" || strings.ContainsAny(m, " \t/:") {
				bad(fmt.Sprintf("%s.method[%d]", p, j), "invalid method %q", m)
			}
		}
		for j, port := range r.Port {
			if port < 1 || port > 65535 {
				bad(fmt.Sprintf("%s.port[%d]", p, j), "port %d is out of range 1-65535", port)
			}
		}
		for j, s := range r.Scheme {
			if s != "http" && s != "https" {
				bad(fmt.Sprintf("%s.scheme[%d]", p, j), "unknown scheme %q (use http or https)", s)
			}
		}
		for j, cl := range r.Client {
			if _, err := parsePrefix(cl); err != nil {
				bad(fmt.Sprintf("%s.client[%d]", p, j), "invalid CIDR or address %q", cl)
			}
		}
		for j, d := range r.Door {
			if d != "forward" && d != "reverse" && d != "dns" {
				bad(fmt.Sprintf("%s.door[%d]", p, j), "unknown door %q (use forward, reverse or dns)", d)
			}
		}
		if r.Schedule != "" {
			if _, ok := c.Schedules[strings.TrimPrefix(r.Schedule, "!")]; !ok {
				bad(p+".schedule", "unknown schedule %q%s", r.Schedule, known(c.Schedules))
			}
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func known[V any](m map[string]V) string {
	if len(m) == 0 {
		return " (none are defined)"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sortStrings(names)
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func errOrEmpty(err error) string {
	if err == nil {
		return "empty pattern"
	}
	return err.Error()
}

func errOrPath(err error) string {
	if err == nil {
		return "a path glob starts with / (or *)"
	}
	return err.Error()
}

func sortStrings(s []string) { slices.Sort(s) }
