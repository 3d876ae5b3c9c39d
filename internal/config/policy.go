// Package config owns the policy file: its structs, strict YAML decoding with the
// position of every field, defaults, and validation that reports every problem at once
// as "FILE:LINE:COL: field.path: what is wrong". Sections that belong to a door or a
// shared part (forward, reverse, pools, cache, anonymize, dns, resolver, admin) are that
// package's own Config type; this package decodes them and calls their Validate.
package config

import "github.com/portcullis/portcullis/rules"

// Policy is one policy file, decoded.
type Policy struct {
	rules.Config `yaml:",inline"`
	Sections     `yaml:",inline"`
}
