package engine

import (
	"sort"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/rules"
)

// builtinProfiles are the profiles every policy has.
func builtinProfiles() map[string]*anonymize.Profile {
	return map[string]*anonymize.Profile{
		"":            anonymize.Elite(),
		"elite":       anonymize.Elite(),
		"anonymous":   anonymize.Anonymous(),
		"transparent": anonymize.Transparent(),
		"privacy":     anonymize.Privacy(),
	}
}

// buildProfiles compiles the policy's anonymize profiles beside the built-in ones.
func (e *Engine) buildProfiles(st *state) error {
	st.profiles = builtinProfiles()
	names := make([]string, 0, len(st.file.Policy.Profiles))
	for name := range st.file.Policy.Profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []field.Error
	for _, name := range names {
		cfg := st.file.Policy.Profiles[name]
		if cfg == nil {
			cfg = &anonymize.ProfileConfig{}
		}
		p, err := anonymize.Compile(name, *cfg, st.lists.matcher)
		if err != nil {
			errs = append(errs, field.Errorf("profiles."+name, "%v", err))
			continue
		}
		st.profiles[name] = p
		if len(p.TrackerLists()) > 0 {
			st.hasTrackers = true
		}
	}
	if len(errs) > 0 {
		return st.file.FieldErrors(errs)
	}
	return nil
}

// matcher returns one Matcher for a list name (a UT1 folder: any of its categories).
func (l *loadedLists) matcher(name string) (filter.Matcher, bool) {
	entries, ok := l.byName[name]
	if !ok {
		return nil, false
	}
	if len(entries) == 1 {
		return entries[0].M, true
	}
	return anyOf(entries), true
}

type anyOf []rules.ListEntry

func (a anyOf) Match(host string) bool {
	for _, e := range a {
		if e.M.Match(host) {
			return true
		}
	}
	return false
}
