package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/config/field"
)

// validateRefs checks names that rules and sections use from other sections
// (profiles, pools, cache policies, groups).
func (f *File) validateRefs() []field.Error {
	var errs []field.Error
	for i, r := range f.Policy.Rules {
		if r == nil {
			continue
		}
		if r.Profile != "" && !f.hasProfile(r.Profile) {
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].profile", i), "unknown anonymize profile %q", r.Profile))
		}
		if r.Pool != "" && !f.hasPool(r.Pool) {
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].pool", i), "unknown pool %q%s", r.Pool, knownNames(f.Policy.Pools)))
		} else if r.Pool != "" && len(r.Door) > 0 && !slices.Contains(r.Door, "forward") && f.isParent(r.Pool) {
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].pool", i),
				"pool %q is a parent proxy pool (parent: true), used only by the forward door", r.Pool))
		} else if r.Pool != "" && slices.Equal(r.Door, []string{"forward"}) && !f.isParent(r.Pool) {
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].pool", i),
				"pool %q is not a parent proxy pool: the forward door sends requests through a pool only when it has parent: true", r.Pool))
		}
		if r.Cache != "" && !f.hasCachePolicy(r.Cache) {
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].cache", i), "unknown cache policy %q", r.Cache))
		}
	}
	if rv := f.Policy.Reverse; rv != nil {
		for i, r := range rv.Routes {
			p := fmt.Sprintf("reverse.routes[%d]", i)
			if r.Pool == "" {
				errs = append(errs, field.Errorf(p+".pool", "a route needs a pool"))
			} else if !f.hasPool(r.Pool) {
				errs = append(errs, field.Errorf(p+".pool", "unknown pool %q%s", r.Pool, knownNames(f.Policy.Pools)))
			} else if f.isParent(r.Pool) {
				errs = append(errs, field.Errorf(p+".pool", "pool %q is a parent proxy pool (parent: true), for the forward door; a route needs a pool of origins", r.Pool))
			}
			if r.Cache != "" && !f.hasCachePolicy(r.Cache) {
				errs = append(errs, field.Errorf(p+".cache", "unknown cache policy %q%s", r.Cache, knownNames(f.Policy.CachePolicies)))
			}
		}
	}
	if d := f.Policy.DNS; d != nil {
		for name, n := range d.GSLB.Names {
			for i, site := range n.Sites {
				if site.Pool != "" && !f.hasPool(site.Pool) {
					errs = append(errs, field.Errorf(fmt.Sprintf("dns.gslb.names.%s.sites[%d].pool", name, i), "unknown pool %q%s", site.Pool, knownNames(f.Policy.Pools)))
				}
			}
		}
	}
	errs = append(errs, f.validateGroupRefs()...)
	if len(f.Policy.CachePolicies) > 0 && f.Policy.Cache == nil {
		errs = append(errs, field.Errorf("cache_policies", "cache policies need a cache section (cache: {max_bytes: 256MiB…})"))
	}
	if fw := f.Policy.Forward; fw != nil {
		if fw.Profile != "" && !f.hasProfile(fw.Profile) {
			errs = append(errs, field.Errorf("forward.profile", "unknown anonymize profile %q", fw.Profile))
		}
	}
	return errs
}

func (f *File) hasProfile(name string) bool {
	switch name {
	case "elite", "anonymous", "transparent", "privacy":
		return true
	}
	_, ok := f.Policy.Profiles[name]
	return ok
}
func (f *File) hasPool(name string) bool {
	_, ok := f.Policy.Pools[name]
	return ok
}

// isParent reports whether the pool named name is a parent proxy pool.
func (f *File) isParent(name string) bool {
	c := f.Policy.Pools[name]
	return c != nil && c.Parent
}

func (f *File) hasCachePolicy(name string) bool {
	_, ok := f.Policy.CachePolicies[name]
	return ok
}

func knownNames[V any](m map[string]V) string {
	if len(m) == 0 {
		return " (none are defined)"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return " (defined: " + strings.Join(names, ", ") + ")"
}
