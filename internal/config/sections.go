package config

// Sections holds the parts of the policy file owned by other packages. Each is that
// package's Config; nil means the section is absent (the door is off).
type Sections struct{}
