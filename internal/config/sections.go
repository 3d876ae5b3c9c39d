package config

import "github.com/portcullis/portcullis/forward"

// Sections holds the parts of the policy file owned by other packages. Each is that
// package's Config; nil means the section is absent (that door is off).
type Sections struct {
	// Forward is the forward proxy door.
	Forward *forward.Config `yaml:"forward"`
}
