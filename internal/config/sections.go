package config

import (
	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/admin"
)

// Sections holds the parts of the policy file owned by other packages. Each is that
// package's Config; nil means the section is absent (that door is off).
type Sections struct {
	// Forward is the forward proxy door.
	Forward *forward.Config `yaml:"forward"`
	// Profiles are named anonymize profiles, in addition to the built-in elite,
	// anonymous, transparent and privacy.
	Profiles map[string]*anonymize.ProfileConfig `yaml:"profiles"`
	// Admin is the admin listener and the access log.
	Admin *admin.Config `yaml:"admin"`
}
