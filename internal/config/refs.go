package config

import (
	"fmt"

	"github.com/portcullis/portcullis/internal/config/field"
)

// validateRefs checks names that rules use from other sections (profiles, pools,
// cache policies).
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
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].pool", i), "unknown pool %q", r.Pool))
		}
		if r.Cache != "" && !f.hasCachePolicy(r.Cache) {
			errs = append(errs, field.Errorf(fmt.Sprintf("rules[%d].cache", i), "unknown cache policy %q", r.Cache))
		}
	}
	if fw := f.Policy.Forward; fw != nil && fw.Profile != "" && !f.hasProfile(fw.Profile) {
		errs = append(errs, field.Errorf("forward.profile", "unknown anonymize profile %q", fw.Profile))
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
func (f *File) hasPool(string) bool        { return false }
func (f *File) hasCachePolicy(string) bool { return false }
