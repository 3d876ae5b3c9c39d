package anonymize

import (
	"errors"
	"maps"
	"slices"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/config/field"
)

// Profiles is the compiled set of named profiles a policy can choose from: the
// built-ins (transparent, anonymous, elite, privacy) and the policy's own, which
// replace a built-in of the same name. It is immutable and safe for concurrent use.
type Profiles struct {
	byName map[string]*Profile
}

// CompileProfiles compiles the policy's profiles section (name → ProfileConfig).
// Errors are one *ConfigError with Profile "" and paths "<name>.<field>".
func CompileProfiles(cfgs map[string]ProfileConfig, lists func(name string) (filter.Matcher, bool)) (*Profiles, error) {
	ps := &Profiles{byName: map[string]*Profile{
		"transparent": Transparent(),
		"anonymous":   Anonymous(),
		"elite":       Elite(),
		"privacy":     Privacy(),
	}}
	var errs []field.Error
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		if name == "" {
			errs = append(errs, field.Errorf("", "a profile needs a name"))
			continue
		}
		p, err := Compile(name, cfgs[name], lists)
		var ce *ConfigError
		switch {
		case errors.As(err, &ce):
			errs = append(errs, field.Prefix(name, ce.Errs)...)
		case err != nil:
			errs = append(errs, field.Errorf(name, "%v", err))
		default:
			ps.byName[name] = p
		}
	}
	if len(errs) > 0 {
		return nil, &ConfigError{Errs: errs}
	}
	return ps, nil
}

// Get returns the profile called name: "" is the default, elite; an unknown name is
// nil (policy validation should refuse verdicts naming one).
func (ps *Profiles) Get(name string) *Profile {
	if name == "" {
		name = "elite"
	}
	return ps.byName[name]
}

// Names returns the profile names in order.
func (ps *Profiles) Names() []string { return slices.Sorted(maps.Keys(ps.byName)) }

// TrackerLists returns the names of every tracker list some profile uses, in order
// and without repeats, for the engine to load and turn into quiet-block rules.
func (ps *Profiles) TrackerLists() []string {
	var names []string
	for _, p := range ps.byName {
		for _, n := range p.trackerNames {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}
